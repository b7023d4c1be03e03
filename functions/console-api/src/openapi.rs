//! The OpenAPI 3.1 document of the console API, served at `GET /v1/openapi.json`. A test checks that its
//! paths and methods are exactly the router's ([`crate::ROUTES`]).

use serde_json::{Value, json};

fn problem_responses(codes: &[u16]) -> Value {
    let mut responses = serde_json::Map::new();
    for code in codes {
        let description = match code {
            401 => "No valid identity: sign in again",
            403 => "The caller's role does not allow this",
            404 => "No such id in the caller's business",
            405 => "Method not allowed",
            409 => "Conflicts with the current state (a closed reply window, a decided draft)",
            413 => "The body is over 64 KiB",
            422 => "A field is invalid (`field` names it)",
            502 => "The messaging platform refused the message",
            503 => "Temporarily unavailable: retry",
            _ => "Error",
        };
        responses.insert(
            code.to_string(),
            json!({"description": description, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}),
        );
    }
    Value::Object(responses)
}

fn with(mut ok: Value, errors: &[u16]) -> Value {
    let map = ok.as_object_mut().expect("an object");
    if let Value::Object(errors) = problem_responses(errors) {
        map.extend(errors);
    }
    ok
}

fn ok_json(code: &str, description: &str, schema: &str) -> Value {
    json!({ code: {"description": description, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}}})
}

fn id_param(description: &str) -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}, "description": description})
}

const CONVERSATION_ID: &str = "A conversation id as listed (`{channel_id}.{conversation_id}`)";
const KNOWLEDGE_ID: &str = "A knowledge entry id as listed";
const DRAFT_ID: &str = "A draft id as listed (`{conversation_id}.{draft_id}`)";

fn cursor_param() -> Value {
    json!({"name": "cursor", "in": "query", "schema": {"type": "string"},
           "description": "`next_cursor` of the previous page (signed; valid only for the same listing and business)"})
}

fn limit_param() -> Value {
    json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}})
}

fn contact_params() -> Value {
    json!([
        {"name": "platform", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/Platform"}},
        {"name": "user_id", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 128},
         "description": "The customer's id on the platform (percent-encoded)"},
    ])
}

/// The document.
pub fn document() -> Value {
    let conversation = json!([id_param(CONVERSATION_ID)]);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Inbox console API",
            "version": "1",
            "description": "A business's staff work their inbox: conversations, human replies, drafts (`agent` \
                and `owner`); its owner also keeps knowledge, settings and channels, reads usage and the audit \
                trail, and answers a customer's export or erasure request (`owner` only). \
                Every route but this document needs `Authorization: Bearer <Cognito token>`; the token's \
                `custom:tenant_id` is the business and `cognito:groups` the role (`agent` or `owner`). \
                Errors are RFC 9457 problem+json.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "The OpenAPI document", "content": {"application/json": {}}}},
                },
            },
            "/v1/conversations": {
                "get": {
                    "summary": "Conversations, newest activity first (agent)",
                    "parameters": [
                        {"name": "mode", "in": "query", "schema": {"type": "string", "enum": ["human", "bot"]}},
                        {"name": "platform", "in": "query", "schema": {"$ref": "#/components/schemas/Platform"}},
                        limit_param(),
                        cursor_param(),
                    ],
                    "responses": with(ok_json("200", "A page of conversations (with a filter, a page may hold fewer than `limit`; follow `next_cursor` until it is null)", "ConversationPage"), &[401, 403, 422, 503]),
                },
            },
            "/v1/conversations/{id}": {
                "get": {
                    "summary": "One conversation (agent)",
                    "parameters": conversation.clone(),
                    "responses": with(ok_json("200", "The conversation", "Conversation"), &[401, 403, 404]),
                },
            },
            "/v1/conversations/{id}/messages": {
                "get": {
                    "summary": "The conversation's messages, oldest first, page by page (agent)",
                    "parameters": [id_param(CONVERSATION_ID), limit_param(), cursor_param()],
                    "responses": with(ok_json("200", "A page of messages", "MessagePage"), &[401, 403, 404, 422]),
                },
                "post": {
                    "summary": "A person's reply, sent through the platform (agent)",
                    "description": "Messenger and Instagram: within 24 h of the customer's last message as a \
                        response, 24 h to 7 days with the HUMAN_AGENT tag, later 409. WhatsApp: within 24 h, \
                        later 409 (a template message is required). LINE: a push at any time. The same \
                        `Idempotency-Key` never sends twice (the first result is answered, `duplicate: true`). \
                        The conversation is in human mode afterwards.",
                    "parameters": [
                        id_param(CONVERSATION_ID),
                        {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "maxLength": 128, "pattern": "^[A-Za-z0-9_.:-]+$"}},
                    ],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {
                        "type": "object", "additionalProperties": false, "required": ["text"],
                        "properties": {"text": {"type": "string", "minLength": 1, "description": "At most the platform's limit: Messenger 2000, Instagram 1000, WhatsApp 4096, LINE 5000 characters"}},
                    }}}},
                    "responses": with(
                        {
                            let mut ok = ok_json("201", "Sent", "Delivered");
                            ok["200"] = json!({"description": "Sent before with this Idempotency-Key: nothing sent now", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Delivered"}}}});
                            ok
                        },
                        &[401, 403, 404, 409, 413, 422, 502, 503],
                    ),
                },
            },
            "/v1/conversations/{id}/handoff": {
                "post": {
                    "summary": "A person takes the conversation over: the bot stays silent (agent)",
                    "parameters": conversation.clone(),
                    "responses": with(ok_json("200", "The conversation", "Conversation"), &[401, 403, 404, 422]),
                },
            },
            "/v1/conversations/{id}/release": {
                "post": {
                    "summary": "Back to the bot (agent)",
                    "parameters": conversation,
                    "responses": with(ok_json("200", "The conversation", "Conversation"), &[401, 403, 404, 422]),
                },
            },
            "/v1/drafts": {
                "get": {
                    "summary": "Drafts waiting for a person's decision, oldest first (agent)",
                    "responses": with(ok_json("200", "The pending drafts", "DraftList"), &[401, 403]),
                },
            },
            "/v1/drafts/{id}/approve": {
                "post": {
                    "summary": "Approve a draft, optionally edited first; it is sent once (agent)",
                    "parameters": [id_param(DRAFT_ID)],
                    "requestBody": {"required": false, "content": {"application/json": {"schema": {
                        "type": "object", "additionalProperties": false,
                        "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 5000, "description": "The edited text (only while the draft is pending)"}},
                    }}}},
                    "responses": with(ok_json("200", "Sent (or sent before: `duplicate: true`)", "Delivered"), &[401, 403, 404, 409, 413, 422, 502, 503]),
                },
            },
            "/v1/drafts/{id}/reject": {
                "post": {
                    "summary": "Discard a draft: nothing is sent (agent)",
                    "parameters": [id_param(DRAFT_ID)],
                    "responses": with(
                        json!({"200": {"description": "Rejected", "content": {"application/json": {"schema": {"type": "object", "properties": {"id": {"type": "string"}, "status": {"const": "rejected"}}}}}}}),
                        &[401, 403, 404, 409, 422],
                    ),
                },
            },
            "/v1/knowledge": {
                "get": {
                    "summary": "The business's knowledge entries: what the AI answers from (owner)",
                    "responses": with(ok_json("200", "Every entry", "KnowledgeList"), &[401, 403]),
                },
                "post": {
                    "summary": "Add an entry (owner)",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/KnowledgeInput"}}}},
                    "responses": with(ok_json("201", "Added", "KnowledgeEntry"), &[401, 403, 413, 422]),
                },
            },
            "/v1/knowledge/import": {
                "post": {
                    "summary": "Add or update many entries (owner)",
                    "description": "A JSON array of `{question, answer}`, or `text/csv` with a `question,answer` header \
                        (quoted fields as RFC 4180). A row whose question is the same as an entry's (trimmed, \
                        case-insensitive) replaces that entry's answer; invalid rows are reported by number \
                        (1 is the first row after the header) and skipped. At most 1000 rows and 1 MiB.",
                    "requestBody": {"required": true, "content": {
                        "application/json": {"schema": {"type": "array", "maxItems": 1000, "items": {
                            "type": "object", "required": ["question", "answer"],
                            "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
                        }}},
                        "text/csv": {"schema": {"type": "string"}},
                    }},
                    "responses": with(ok_json("200", "What was added, updated and rejected", "ImportReport"), &[401, 403, 413, 422]),
                },
            },
            "/v1/knowledge/{id}": {
                "get": {
                    "summary": "One entry (owner)",
                    "parameters": [id_param(KNOWLEDGE_ID)],
                    "responses": with(ok_json("200", "The entry", "KnowledgeEntry"), &[401, 403, 404]),
                },
                "put": {
                    "summary": "Replace an entry's texts (owner)",
                    "parameters": [id_param(KNOWLEDGE_ID)],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/KnowledgeInput"}}}},
                    "responses": with(ok_json("200", "The entry", "KnowledgeEntry"), &[401, 403, 404, 413, 422]),
                },
                "delete": {
                    "summary": "Remove an entry (owner)",
                    "parameters": [id_param(KNOWLEDGE_ID)],
                    "responses": with(json!({"204": {"description": "Removed"}}), &[401, 403, 404]),
                },
            },
            "/v1/settings": {
                "get": {
                    "summary": "The business's settings (owner)",
                    "responses": with(ok_json("200", "The settings", "Settings"), &[401, 403]),
                },
                "patch": {
                    "summary": "Change some settings (owner); audited with the names of those changed",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SettingsChange"}}}},
                    "responses": with(ok_json("200", "The settings after the change", "Settings"), &[401, 403, 413, 422]),
                },
            },
            "/v1/channels": {
                "get": {
                    "summary": "The business's channels with their status (owner); never a credential",
                    "responses": with(ok_json("200", "Every channel, disconnected ones too", "ChannelList"), &[401, 403]),
                },
            },
            "/v1/channels/connect-link": {
                "post": {
                    "summary": "A link the business opens to connect a Messenger, Instagram or WhatsApp account (owner)",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {
                        "type": "object", "additionalProperties": false, "required": ["platform"],
                        "properties": {
                            "platform": {"type": "string", "enum": ["messenger", "instagram", "whatsapp"]},
                            "via_facebook": {"type": "boolean", "description": "Instagram through its Facebook Page instead of Instagram Login"},
                        },
                    }}}},
                    "responses": with(
                        json!({"201": {"description": "The link", "content": {"application/json": {"schema": {"type": "object", "properties": {
                            "url": {"type": "string"}, "expires_at": {"type": "string", "format": "date-time"}}}}}}}),
                        &[401, 403, 413, 422, 503],
                    ),
                },
            },
            "/v1/channels/{id}/disconnect": {
                "post": {
                    "summary": "Disconnect a channel: the platform is told, the token destroyed, its data deleted after the business's period (owner)",
                    "parameters": [id_param("A channel id as listed")],
                    "responses": with(ok_json("200", "The channel", "Channel"), &[401, 403, 404, 409, 422, 503]),
                },
            },
            "/v1/usage": {
                "get": {
                    "summary": "Metered use in a month (UTC), per channel and in total (owner)",
                    "parameters": [{"name": "month", "in": "query", "schema": {"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$"}, "description": "YYYY-MM; this month if absent"}],
                    "responses": with(ok_json("200", "The month's usage", "Usage"), &[401, 403, 422]),
                },
            },
            "/v1/analytics": {
                "get": {
                    "summary": "Per platform over whole UTC days: conversations, messages, the shares of customer messages the AI answered, drafted and handed off, and the median and 90th percentile time to first response, AI and people apart (owner)",
                    "parameters": [
                        {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}, "description": "YYYY-MM-DD, the first day included; 29 days before `to` if absent"},
                        {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}, "description": "YYYY-MM-DD, the last day included; today (UTC) if absent. At most 366 days in all"},
                    ],
                    "responses": with(ok_json("200", "The period's figures", "Analytics"), &[401, 403, 422]),
                },
            },
            "/v1/audit": {
                "get": {
                    "summary": "What was done in the business and by whom, newest first (owner)",
                    "parameters": [limit_param(), cursor_param()],
                    "responses": with(ok_json("200", "A page of audit events", "AuditPage"), &[401, 403, 422]),
                },
            },
            "/v1/contacts/{platform}/{user_id}/export": {
                "post": {
                    "summary": "An end user's access request: everything stored about one contact, as one document (owner); audited",
                    "parameters": contact_params(),
                    "responses": with(
                        json!({"200": {"description": "The export (format_version, contact, conversations with messages and drafts)", "content": {"application/json": {}}}}),
                        &[401, 403, 404, 422],
                    ),
                },
            },
            "/v1/contacts/{platform}/{user_id}/erase": {
                "post": {
                    "summary": "An end user's erasure request: everything of one contact deleted now (owner); audited",
                    "parameters": contact_params(),
                    "responses": with(ok_json("200", "What was deleted, by kind", "Erased"), &[401, 403, 404, 422]),
                },
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status"],
                    "properties": {
                        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                        "detail": {"type": "string"}, "field": {"type": "string", "description": "The invalid field (422)"},
                    },
                },
                "Platform": {"type": "string", "enum": ["messenger", "instagram", "whatsapp", "line"]},
                "Conversation": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"}, "channel_id": {"type": "string"},
                        "platform": {"$ref": "#/components/schemas/Platform"},
                        "user_id": {"type": "string", "description": "The customer's id on the platform"},
                        "mode": {"type": "string", "enum": ["bot", "human"]},
                        "handoff_reason": {"type": ["string", "null"]},
                        "last_inbound_at": {"type": ["string", "null"], "format": "date-time"},
                        "last_outbound_at": {"type": ["string", "null"], "format": "date-time"},
                        "last_activity_at": {"type": "string", "format": "date-time"},
                        "created_at": {"type": "string", "format": "date-time"},
                        "reply_window": {
                            "type": "object",
                            "properties": {
                                "state": {"type": "string", "enum": ["open", "human_agent_only", "closed", "always"]},
                                "standard_closes_at": {"type": ["string", "null"], "format": "date-time"},
                            },
                        },
                    },
                },
                "ConversationPage": {
                    "type": "object",
                    "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Conversation"}},
                        "next_cursor": {"type": ["string", "null"]},
                    },
                },
                "Message": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "direction": {"type": "string", "enum": ["inbound", "outbound"]},
                        "author": {"type": "string", "enum": ["customer", "ai", "agent"]},
                        "text": {"type": ["string", "null"]},
                        "attachments": {"type": "array"},
                        "status": {"type": "string"},
                        "sent_at": {"type": "string", "format": "date-time"},
                    },
                },
                "MessagePage": {
                    "type": "object",
                    "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
                        "next_cursor": {"type": ["string", "null"]},
                    },
                },
                "Draft": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"}, "conversation_id": {"type": "string"},
                        "in_reply_to": {"type": "string"}, "text": {"type": "string"},
                        "status": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
                    },
                },
                "DraftList": {
                    "type": "object",
                    "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Draft"}}},
                },
                "Settings": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "ai_mode": {"type": "string", "enum": ["auto", "draft", "off"]},
                        "retention_days": {"type": "integer"}, "disconnected_channel_days": {"type": "integer"},
                        "terminated_content_days": {"type": "integer"}, "terminated_account_days": {"type": "integer"},
                        "audit_days": {"type": "integer"},
                        "instructions": {"type": "string"},
                        "provider_order": {"type": "array", "items": {"type": "string"}},
                        "mask_personal_data": {"type": "boolean"},
                        "monthly_message_limit": {"type": ["integer", "null"]},
                        "monthly_token_limit": {"type": ["integer", "null"]},
                        "greeting_reply": {"type": ["string", "null"]},
                        "thanks_reply": {"type": ["string", "null"]},
                    },
                },
                "SettingsChange": {
                    "type": "object", "additionalProperties": false, "minProperties": 1,
                    "description": "Only the settings to change. Periods are days from 1 to 3650. An empty greeting_reply or thanks_reply removes it.",
                    "properties": {
                        "ai_mode": {"type": "string", "enum": ["auto", "draft", "off"]},
                        "retention_days": {"type": "integer", "minimum": 1, "maximum": 3650},
                        "disconnected_channel_days": {"type": "integer", "minimum": 1, "maximum": 3650},
                        "terminated_content_days": {"type": "integer", "minimum": 1, "maximum": 3650},
                        "terminated_account_days": {"type": "integer", "minimum": 1, "maximum": 3650},
                        "audit_days": {"type": "integer", "minimum": 1, "maximum": 3650},
                        "instructions": {"type": "string"},
                        "provider_order": {"type": "array", "items": {"type": "string"}},
                        "mask_personal_data": {"type": "boolean"},
                        "monthly_message_limit": {"type": "integer", "minimum": 0},
                        "monthly_token_limit": {"type": "integer", "minimum": 0},
                        "greeting_reply": {"type": "string"},
                        "thanks_reply": {"type": "string"},
                    },
                },
                "Channel": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"}, "platform": {"$ref": "#/components/schemas/Platform"},
                        "account_id": {"type": "string"}, "name": {"type": ["string", "null"]},
                        "status": {"type": "string", "enum": ["connected", "needs_reauth", "disconnected"]},
                        "reauth_reason": {"type": ["string", "null"]},
                        "connected_at": {"type": "string", "format": "date-time"},
                        "disconnected_at": {"type": ["string", "null"], "format": "date-time"},
                        "token_expires_at": {"type": ["string", "null"], "format": "date-time"},
                    },
                },
                "ChannelList": {
                    "type": "object",
                    "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Channel"}}},
                },
                "Usage": {
                    "type": "object",
                    "properties": {
                        "month": {"type": "string"},
                        "totals": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "channels": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "Analytics": {
                    "type": "object",
                    "properties": {
                        "from": {"type": "string", "format": "date"},
                        "to": {"type": "string", "format": "date"},
                        "platforms": {"type": "array", "items": {"$ref": "#/components/schemas/PlatformFigures"}},
                    },
                },
                "PlatformFigures": {
                    "type": "object",
                    "properties": {
                        "platform": {"type": "string", "enum": ["messenger", "instagram", "whatsapp", "line"]},
                        "conversations": {"type": "integer", "description": "Begun in the period: a customer message after 24 hours without one"},
                        "customer_messages": {"type": "integer"},
                        "sent_by_ai": {"type": "integer"},
                        "sent_by_people": {"type": "integer", "description": "From the console, or approved drafts"},
                        "decided": {"type": "integer", "description": "Customer messages the AI decided on (not superseded by a newer one of the burst, not a greeting needing nothing): the shares' denominator"},
                        "answered_by_ai": {"$ref": "#/components/schemas/Share"},
                        "drafted": {"$ref": "#/components/schemas/Share"},
                        "handed_off": {"$ref": "#/components/schemas/Share"},
                        "outcomes": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "first_response_ai": {"$ref": "#/components/schemas/ResponseTimes"},
                        "first_response_human": {"$ref": "#/components/schemas/ResponseTimes"},
                    },
                },
                "Share": {
                    "type": "object",
                    "properties": {"count": {"type": "integer"}, "share": {"type": ["number", "null"]}},
                },
                "ResponseTimes": {
                    "type": "object",
                    "description": "From the oldest unanswered customer message to the next reply; quantiles read from buckets about a quarter wide",
                    "properties": {
                        "count": {"type": "integer"},
                        "median_seconds": {"type": ["integer", "null"]},
                        "p90_seconds": {"type": ["integer", "null"]},
                    },
                },
                "AuditEvent": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"}, "at": {"type": "string", "format": "date-time"},
                        "actor": {"type": "string", "description": "`console:{user}` for a console user"},
                        "action": {"type": "string"}, "subject": {"type": ["string", "null"]},
                        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                    },
                },
                "Erased": {
                    "type": "object",
                    "properties": {"deleted": {"type": "object", "additionalProperties": {"type": "integer"}}},
                },
                "AuditPage": {
                    "type": "object",
                    "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEvent"}},
                        "next_cursor": {"type": ["string", "null"]},
                    },
                },
                "KnowledgeInput": {
                    "type": "object", "additionalProperties": false, "required": ["question", "answer"],
                    "properties": {
                        "question": {"type": "string", "minLength": 1, "maxLength": 500},
                        "answer": {"type": "string", "minLength": 1, "maxLength": 5000},
                        "alternates": {"type": "array", "maxItems": 20, "items": {"type": "string", "maxLength": 500},
                            "description": "Other ways customers ask the same question"},
                    },
                },
                "KnowledgeEntry": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"}, "question": {"type": "string"}, "answer": {"type": "string"},
                        "alternates": {"type": "array", "items": {"type": "string"}},
                        "created_at": {"type": "string", "format": "date-time"},
                    },
                },
                "KnowledgeList": {
                    "type": "object",
                    "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/KnowledgeEntry"}}},
                },
                "ImportReport": {
                    "type": "object",
                    "properties": {
                        "added": {"type": "integer"}, "updated": {"type": "integer"},
                        "rejected": {"type": "array", "items": {"type": "object", "properties": {
                            "row": {"type": "integer"}, "reason": {"type": "string"}}}},
                    },
                },
                "Delivered": {
                    "type": "object",
                    "properties": {
                        "message_id": {"type": ["string", "null"], "description": "The platform's message id"},
                        "duplicate": {"type": "boolean", "description": "Sent before (same Idempotency-Key, or the draft was approved already): nothing sent now"},
                    },
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_document_has_every_route_and_no_other() {
        let document = document();
        let mut documented = BTreeSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
        let routed: BTreeSet<(String, String)> = crate::ROUTES
            .iter()
            .map(|r| (r.method.to_owned(), r.pattern.to_owned()))
            .collect();
        assert_eq!(documented, routed);
        assert_eq!(document["openapi"], "3.1.0");
    }
}
