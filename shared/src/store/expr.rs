//! The one place where DynamoDB expressions are written: update expressions (SET / REMOVE / ADD / DELETE),
//! condition and key-condition expressions, with their `#name` and `:value` placeholders.
//!
//! Every attribute name goes through a placeholder, so no operation has to know DynamoDB's reserved
//! words (`status`, `mode`, `month` are among them), and each value gets a fresh placeholder, so two
//! clauses can never collide on one. An operation states what it changes and what must hold; the
//! builder joins the clauses and collects the placeholder maps, and [`WithExpressions`] hands them to
//! whichever request builder carries them.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::builders::{
    ConditionCheckBuilder, DeleteBuilder, PutBuilder, UpdateBuilder,
};

/// One request's expressions, built clause by clause.
#[derive(Debug, Default)]
pub(crate) struct Expr {
    /// Attribute name → its placeholder; one placeholder per name.
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    set: Vec<String>,
    remove: Vec<String>,
    add: Vec<String>,
    delete: Vec<String>,
    conditions: Vec<Condition>,
}

/// A condition on the item, made by [`Expr`] (whose placeholders it uses) and combined with
/// [`Condition::and`] / [`Condition::or`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a condition does nothing until it is required"]
pub(crate) struct Condition(String);

impl Condition {
    pub(crate) fn and(self, other: Condition) -> Condition {
        Condition(format!("({} AND {})", self.0, other.0))
    }

    pub(crate) fn or(self, other: Condition) -> Condition {
        Condition(format!("({} OR {})", self.0, other.0))
    }
}

/// The finished expressions, each `None` when it has no clause (DynamoDB rejects empty ones).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Expressions {
    pub update: Option<String>,
    pub condition: Option<String>,
    pub names: Option<HashMap<String, String>>,
    pub values: Option<HashMap<String, AttributeValue>>,
}

impl Expr {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The placeholder of an attribute name.
    pub(crate) fn name(&mut self, attribute: &str) -> String {
        let next = self.names.len();
        self.names
            .entry(attribute.to_owned())
            .or_insert_with(|| format!("#n{next}"))
            .clone()
    }

    /// The placeholder of a nested attribute, `attributes[0].attributes[1]…`.
    fn path(&mut self, attributes: &[&str]) -> String {
        let parts: Vec<String> = attributes.iter().map(|a| self.name(a)).collect();
        parts.join(".")
    }

    /// A new placeholder for a value.
    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    // --- update clauses ----------------------------------------------------------------------------

    /// `SET attribute = value`.
    pub(crate) fn set(&mut self, attribute: &str, value: AttributeValue) -> &mut Self {
        let (name, value) = (self.name(attribute), self.value(value));
        self.set.push(format!("{name} = {value}"));
        self
    }

    /// `SET attribute = value` unless the attribute has a value already.
    pub(crate) fn set_if_absent(&mut self, attribute: &str, value: AttributeValue) -> &mut Self {
        let (name, value) = (self.name(attribute), self.value(value));
        self.set
            .push(format!("{name} = if_not_exists({name}, {value})"));
        self
    }

    /// Adds `by` to a number at a nested path, starting from zero. (ADD would be atomic too, but it
    /// reaches only top-level attributes.)
    pub(crate) fn increment_path(&mut self, path: &[&str], by: AttributeValue) -> &mut Self {
        let path = self.path(path);
        let zero = self.value(AttributeValue::N("0".into()));
        let by = self.value(by);
        self.set
            .push(format!("{path} = if_not_exists({path}, {zero}) + {by}"));
        self
    }

    /// `REMOVE attribute`.
    pub(crate) fn remove(&mut self, attribute: &str) -> &mut Self {
        let name = self.name(attribute);
        self.remove.push(name);
        self
    }

    /// `DELETE attribute value`: atomic removal of `value`'s elements from a set (the attribute goes
    /// when the set is left empty).
    pub(crate) fn delete_from_set(&mut self, attribute: &str, value: AttributeValue) -> &mut Self {
        let (name, value) = (self.name(attribute), self.value(value));
        self.delete.push(format!("{name} {value}"));
        self
    }

    /// `ADD attribute value`: atomic addition to a number (created at zero), or of elements to a set.
    pub(crate) fn add(&mut self, attribute: &str, value: AttributeValue) -> &mut Self {
        let (name, value) = (self.name(attribute), self.value(value));
        self.add.push(format!("{name} {value}"));
        self
    }

    // --- conditions --------------------------------------------------------------------------------

    /// Requires the condition `make` builds from this expression's placeholders; required conditions
    /// are joined with AND.
    pub(crate) fn require(&mut self, make: impl FnOnce(&mut Self) -> Condition) -> &mut Self {
        let condition = make(self);
        self.conditions.push(condition);
        self
    }

    pub(crate) fn exists(&mut self, attribute: &str) -> Condition {
        Condition(format!("attribute_exists({})", self.name(attribute)))
    }

    pub(crate) fn not_exists(&mut self, attribute: &str) -> Condition {
        Condition(format!("attribute_not_exists({})", self.name(attribute)))
    }

    /// The attribute has no value: absent, or stored as NULL (an `Option` field that is `None`).
    pub(crate) fn no_value(&mut self, attribute: &str) -> Condition {
        let name = self.name(attribute);
        let null = self.value(AttributeValue::S("NULL".into()));
        Condition(format!(
            "(attribute_not_exists({name}) OR attribute_type({name}, {null}))"
        ))
    }

    pub(crate) fn eq(&mut self, attribute: &str, value: AttributeValue) -> Condition {
        self.compare(attribute, "=", value)
    }

    pub(crate) fn ne(&mut self, attribute: &str, value: AttributeValue) -> Condition {
        self.compare(attribute, "<>", value)
    }

    pub(crate) fn lt(&mut self, attribute: &str, value: AttributeValue) -> Condition {
        self.compare(attribute, "<", value)
    }

    pub(crate) fn le(&mut self, attribute: &str, value: AttributeValue) -> Condition {
        self.compare(attribute, "<=", value)
    }

    pub(crate) fn between(
        &mut self,
        attribute: &str,
        low: AttributeValue,
        high: AttributeValue,
    ) -> Condition {
        let (name, low, high) = (self.name(attribute), self.value(low), self.value(high));
        Condition(format!("{name} BETWEEN {low} AND {high}"))
    }

    /// `attribute IN (values…)`; `values` must not be empty (DynamoDB rejects an empty list).
    pub(crate) fn is_in(
        &mut self,
        attribute: &str,
        values: impl IntoIterator<Item = AttributeValue>,
    ) -> Condition {
        let name = self.name(attribute);
        let values: Vec<String> = values.into_iter().map(|v| self.value(v)).collect();
        debug_assert!(!values.is_empty(), "IN needs at least one value");
        Condition(format!("{name} IN ({})", values.join(", ")))
    }

    pub(crate) fn begins_with(&mut self, attribute: &str, prefix: AttributeValue) -> Condition {
        let (name, prefix) = (self.name(attribute), self.value(prefix));
        Condition(format!("begins_with({name}, {prefix})"))
    }

    fn compare(&mut self, attribute: &str, operator: &str, value: AttributeValue) -> Condition {
        let (name, value) = (self.name(attribute), self.value(value));
        Condition(format!("{name} {operator} {value}"))
    }

    /// The expressions, in DynamoDB's clause order (SET, REMOVE, ADD).
    pub(crate) fn build(self) -> Expressions {
        let clauses = [
            ("SET", self.set),
            ("REMOVE", self.remove),
            ("ADD", self.add),
            ("DELETE", self.delete),
        ];
        let update: Vec<String> = clauses
            .into_iter()
            .filter(|(_, parts)| !parts.is_empty())
            .map(|(keyword, parts)| format!("{keyword} {}", parts.join(", ")))
            .collect();
        let conditions: Vec<String> = self.conditions.into_iter().map(|c| c.0).collect();
        let names: HashMap<String, String> = self
            .names
            .into_iter()
            .map(|(attribute, placeholder)| (placeholder, attribute))
            .collect();
        Expressions {
            update: (!update.is_empty()).then(|| update.join(" ")),
            condition: (!conditions.is_empty()).then(|| conditions.join(" AND ")),
            names: (!names.is_empty()).then_some(names),
            values: (!self.values.is_empty()).then_some(self.values),
        }
    }
}

/// A request builder that takes an [`Expr`]: its update, condition (or key condition) expression and
/// placeholder maps.
pub(crate) trait WithExpressions {
    fn expressions(self, expr: Expr) -> Self;
}

macro_rules! with_expressions {
    (update: $($builder:ty),+) => {$(
        impl WithExpressions for $builder {
            fn expressions(self, expr: Expr) -> Self {
                let e = expr.build();
                self.set_update_expression(e.update)
                    .set_condition_expression(e.condition)
                    .set_expression_attribute_names(e.names)
                    .set_expression_attribute_values(e.values)
            }
        }
    )+};
    ($set_condition:ident: $($builder:ty),+) => {$(
        impl WithExpressions for $builder {
            fn expressions(self, expr: Expr) -> Self {
                let e = expr.build();
                debug_assert!(e.update.is_none(), "only an update takes update clauses");
                self.$set_condition(e.condition)
                    .set_expression_attribute_names(e.names)
                    .set_expression_attribute_values(e.values)
            }
        }
    )+};
}

with_expressions!(update: UpdateItemFluentBuilder, UpdateBuilder);
with_expressions!(
    set_condition_expression: PutItemFluentBuilder,
    DeleteItemFluentBuilder,
    PutBuilder,
    DeleteBuilder,
    ConditionCheckBuilder
);
// A Query's required conditions are its key condition.
with_expressions!(set_key_condition_expression: QueryFluentBuilder);

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    #[test]
    fn an_attribute_keeps_one_placeholder_and_every_value_gets_its_own() {
        let mut expr = Expr::new();
        expr.set("status", s("sent"))
            .set("retries", s("1"))
            .require(|e| e.eq("status", s("approved")));
        let e = expr.build();
        assert_eq!(e.update.as_deref(), Some("SET #n0 = :v0, #n1 = :v1"));
        assert_eq!(e.condition.as_deref(), Some("#n0 = :v2"));
        assert_eq!(
            e.names,
            Some(HashMap::from([
                ("#n0".to_owned(), "status".to_owned()),
                ("#n1".to_owned(), "retries".to_owned()),
            ]))
        );
        let values = e.values.expect("values are set");
        assert_eq!(values.len(), 3);
        assert_eq!(values[":v2"], s("approved"));
    }

    #[test]
    fn update_clauses_come_in_set_remove_add_order_whatever_the_call_order() {
        let mut expr = Expr::new();
        expr.add("replies", AttributeValue::N("1".into()))
            .remove("credentials")
            .set("month", s("2026-12"));
        let e = expr.build();
        assert_eq!(
            e.update.as_deref(),
            Some("SET #n2 = :v1 REMOVE #n1 ADD #n0 :v0")
        );
        assert_eq!(e.condition, None);
    }

    #[test]
    fn empty_clauses_and_maps_are_omitted() {
        assert_eq!(Expr::new().build(), Expressions::default());

        let mut expr = Expr::new();
        expr.require(|e| e.exists("pk"));
        let e = expr.build();
        assert_eq!(e.update, None);
        assert_eq!(e.condition.as_deref(), Some("attribute_exists(#n0)"));
        assert_eq!(e.values, None);
    }

    #[test]
    fn required_conditions_are_anded_and_combinations_parenthesised() {
        let mut expr = Expr::new();
        expr.require(|e| {
            let absent = e.not_exists("pk");
            let expired = e.le("ttl", AttributeValue::N("5".into()));
            let in_progress = e.eq("status", s("in_progress"));
            let lapsed = e.lt("lease", AttributeValue::N("9".into()));
            absent.or(expired).or(in_progress.and(lapsed))
        })
        .require(|e| e.is_in("status", [s("a"), s("b")]));
        assert_eq!(
            expr.build().condition.as_deref(),
            Some(
                "((attribute_not_exists(#n0) OR #n1 <= :v0) OR (#n2 = :v1 AND #n3 < :v2)) \
                 AND #n2 IN (:v3, :v4)"
            )
        );
    }

    #[test]
    fn nested_paths_and_if_absent_reuse_their_placeholders() {
        let mut expr = Expr::new();
        expr.increment_path(&["deleted", "messages"], AttributeValue::N("3".into()))
            .increment_path(&["deleted", "drafts"], AttributeValue::N("1".into()))
            .set_if_absent("mode", s("bot"));
        assert_eq!(
            expr.build().update.as_deref(),
            Some(
                "SET #n0.#n1 = if_not_exists(#n0.#n1, :v0) + :v1, \
                 #n0.#n2 = if_not_exists(#n0.#n2, :v2) + :v3, #n3 = if_not_exists(#n3, :v4)"
            )
        );
    }
}
