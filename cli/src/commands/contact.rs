//! `inboxctl export` and `inboxctl erase`: an end user's access and deletion requests.

use super::*;
use inbox_shared::secret::PlatformUserId;

#[derive(Args)]
pub struct ContactArgs {
    #[arg(long)]
    pub tenant: TenantId,
    #[arg(long, value_parser = parse::<Platform>)]
    pub platform: Platform,
    /// The customer's platform id: PSID, IGSID, WhatsApp wa_id or LINE user id.
    #[arg(long)]
    pub contact: String,
}

/// An end user's access request: everything stored about one contact, as one JSON document.
pub async fn export(ctx: &Operator, args: ContactArgs) -> Result<Output> {
    let t = ctx.store.require_tenant(&args.tenant).await?;
    let export = ctx
        .eraser()
        .export_contact(&t, args.platform, &PlatformUserId::new(args.contact))
        .await?;
    let document = serde_json::to_value(&export)?;
    // The document is the output in both modes: it is meant to be handed over as it is.
    Ok(Output::new(
        document.clone(),
        serde_json::to_string_pretty(&document)?,
    ))
}

/// An end user's deletion request: everything of one contact in one tenant.
pub async fn erase(ctx: &Operator, args: ContactArgs) -> Result<Output> {
    let t = ctx.store.require_tenant(&args.tenant).await?;
    let counts = ctx
        .eraser()
        .erase_contact(&t, args.platform, &PlatformUserId::new(args.contact))
        .await?;
    let text = if counts.is_empty() {
        "nothing stored for this contact".to_owned()
    } else {
        counts
            .iter()
            .map(|(kind, n)| format!("deleted {n} {}", kind.replace('_', " ")))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(Output::new(json!({ "deleted": counts }), text))
}
