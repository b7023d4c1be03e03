//! Masking of personal data before text leaves for an LLM provider (a per-tenant option): email
//! addresses, card numbers (13–19 digits that pass the Luhn check) and phone numbers (9 or more digits
//! with the usual separators). It errs towards masking: a long order number reads as a phone number.

pub const EMAIL: &str = "[email]";
pub const CARD: &str = "[card number]";
pub const PHONE: &str = "[phone number]";

pub fn mask_personal_data(text: &str) -> String {
    mask_numbers(&mask_emails(text))
}

fn mask_emails(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, after) = rest.split_at(word_end);
        out.push_str(&mask_email_word(word));
        let space_end = after
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(after.len());
        out.push_str(&after[..space_end]);
        rest = &after[space_end..];
    }
    out
}

fn mask_email_word(word: &str) -> String {
    let is_edge = |c: char| "()<>[]{},;:\"'!?.".contains(c);
    let core = word.trim_matches(is_edge);
    if !looks_like_email(core) {
        return word.to_owned();
    }
    let start = word.find(core).expect("core is inside word");
    format!("{}{EMAIL}{}", &word[..start], &word[start + core.len()..])
}

fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

fn mask_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let is_separator = |c: char| matches!(c, ' ' | '-' | '.' | '(' | ')' | '/');
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts_number = chars[i].is_ascii_digit()
            || (matches!(chars[i], '+' | '(')
                && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        if !starts_number {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let mut digits = Vec::new();
        let mut end = i;
        let mut j = i;
        while j < chars.len() {
            let c = chars[j];
            if c.is_ascii_digit() {
                digits.push(c as u8 - b'0');
                j += 1;
                end = j;
            } else if (j == i && matches!(c, '+' | '('))
                || (is_separator(c)
                    && (chars.get(j + 1).is_some_and(char::is_ascii_digit)
                        || (chars.get(j + 1).is_some_and(|&n| is_separator(n))
                            && chars.get(j + 2).is_some_and(char::is_ascii_digit))))
            {
                j += 1;
            } else {
                break;
            }
        }
        let replacement = if (13..=19).contains(&digits.len()) && luhn_valid(&digits) {
            Some(CARD)
        } else if digits.len() >= 9 {
            Some(PHONE)
        } else {
            None
        };
        match replacement {
            Some(mask) => out.push_str(mask),
            None => out.extend(&chars[i..end]),
        }
        i = end.max(i + 1);
    }
    out
}

fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_cards_and_phones_are_masked() {
        assert_eq!(
            mask_personal_data("Mail me at aiko.t+shop@example.co.jp, thanks"),
            "Mail me at [email], thanks"
        );
        assert_eq!(
            mask_personal_data("card 4242 4242 4242 4242 exp 12/29"),
            "card [card number] exp 12/29"
        );
        assert_eq!(
            mask_personal_data("call +81 90-1234-5678 or (03) 1234 5678."),
            "call [phone number] or [phone number]."
        );
    }

    #[test]
    fn a_sixteen_digit_number_failing_luhn_is_not_called_a_card() {
        assert_eq!(
            mask_personal_data("ref 4242424242424241"),
            "ref [phone number]"
        );
        assert!(luhn_valid(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
    }

    #[test]
    fn short_numbers_dates_and_prices_stay() {
        for kept in [
            "I want 2 loaves at 12:30 on 2026-11-24",
            "order #48213, ¥3,200",
            "a@b is not an email, nor is @home",
            "",
        ] {
            assert_eq!(mask_personal_data(kept), kept);
        }
    }
}
