//! Greetings, thanks and acknowledgements: messages that ask nothing. Alone ("thanks!", "สวัสดีค่ะ",
//! "よろしくお願いします"), they get no answer from the knowledge base and no handoff — only the
//! tenant's acknowledgement, if it set one. Inside a question ("hi, do you deliver?") they are taken
//! out, so the question is matched on what it asks.

use std::sync::LazyLock;

use super::analysis::normalize;

/// What a message made only of social phrases does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Social {
    /// Says hello.
    Greeting,
    /// Thanks, acknowledges ("ok", "了解です") or says goodbye.
    Thanks,
}

impl Social {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Greeting => "greeting",
            Self::Thanks => "thanks",
        }
    }
}

/// What a phrase contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Greeting,
    Thanks,
    /// Politeness or emphasis that goes with either ("so", "ค่ะ", "большое"); alone it is not social.
    Filler,
}

/// Normalised (lower-case) phrases, any order: they are tried longest first.
const PHRASES: &[(&str, Kind)] = &[
    // English
    ("hello", Kind::Greeting),
    ("hi", Kind::Greeting),
    ("hey", Kind::Greeting),
    ("hiya", Kind::Greeting),
    ("good morning", Kind::Greeting),
    ("good afternoon", Kind::Greeting),
    ("good evening", Kind::Greeting),
    ("morning", Kind::Greeting),
    ("how are you", Kind::Greeting),
    ("thank you", Kind::Thanks),
    ("thank u", Kind::Thanks),
    ("thanks", Kind::Thanks),
    ("thx", Kind::Thanks),
    ("ty", Kind::Thanks),
    ("tysm", Kind::Thanks),
    ("cheers", Kind::Thanks),
    ("ok", Kind::Thanks),
    ("okay", Kind::Thanks),
    ("got it", Kind::Thanks),
    ("great", Kind::Thanks),
    ("perfect", Kind::Thanks),
    ("cool", Kind::Thanks),
    ("awesome", Kind::Thanks),
    ("noted", Kind::Thanks),
    ("bye", Kind::Thanks),
    ("goodbye", Kind::Thanks),
    ("see you", Kind::Thanks),
    ("have a nice day", Kind::Thanks),
    ("have a good day", Kind::Thanks),
    ("so much", Kind::Filler),
    ("very much", Kind::Filler),
    ("a lot", Kind::Filler),
    ("there", Kind::Filler),
    ("again", Kind::Filler),
    ("all", Kind::Filler),
    // Thai
    ("สวัสดี", Kind::Greeting),
    ("หวัดดี", Kind::Greeting),
    ("ขอบคุณ", Kind::Thanks),
    ("ขอบใจ", Kind::Thanks),
    ("โอเค", Kind::Thanks),
    ("รับทราบ", Kind::Thanks),
    ("เข้าใจแล้ว", Kind::Thanks),
    ("สบายดีไหม", Kind::Greeting),
    ("ได้", Kind::Filler),
    ("มาก", Kind::Filler),
    ("ครับ", Kind::Filler),
    ("คับ", Kind::Filler),
    ("ค่ะ", Kind::Filler),
    ("ค่า", Kind::Filler),
    ("คะ", Kind::Filler),
    ("นะ", Kind::Filler),
    ("จ้า", Kind::Filler),
    ("จ้ะ", Kind::Filler),
    // Japanese
    ("こんにちは", Kind::Greeting),
    ("こんばんは", Kind::Greeting),
    ("おはようございます", Kind::Greeting),
    ("おはよう", Kind::Greeting),
    ("はじめまして", Kind::Greeting),
    ("ありがとうございます", Kind::Thanks),
    ("ありがとうございました", Kind::Thanks),
    ("ありがとう", Kind::Thanks),
    ("どうも", Kind::Thanks),
    ("了解です", Kind::Thanks),
    ("了解しました", Kind::Thanks),
    ("了解", Kind::Thanks),
    ("承知しました", Kind::Thanks),
    ("わかりました", Kind::Thanks),
    ("分かりました", Kind::Thanks),
    ("よろしくお願いします", Kind::Thanks),
    ("よろしくお願いいたします", Kind::Thanks),
    ("失礼します", Kind::Thanks),
    ("お元気ですか", Kind::Greeting),
    ("元気ですか", Kind::Greeting),
    ("はい", Kind::Filler),
    // Russian
    ("здравствуйте", Kind::Greeting),
    ("привет", Kind::Greeting),
    ("добрый день", Kind::Greeting),
    ("доброе утро", Kind::Greeting),
    ("добрый вечер", Kind::Greeting),
    ("спасибо", Kind::Thanks),
    ("спс", Kind::Thanks),
    ("благодарю", Kind::Thanks),
    ("ок", Kind::Thanks),
    ("окей", Kind::Thanks),
    ("хорошо", Kind::Thanks),
    ("понял", Kind::Thanks),
    ("поняла", Kind::Thanks),
    ("понятно", Kind::Thanks),
    ("ясно", Kind::Thanks),
    ("отлично", Kind::Thanks),
    ("до свидания", Kind::Thanks),
    ("пока", Kind::Thanks),
    ("всего доброго", Kind::Thanks),
    ("как дела", Kind::Greeting),
    ("как вы", Kind::Greeting),
    ("большое", Kind::Filler),
    ("огромное", Kind::Filler),
    ("вам", Kind::Filler),
    // Kazakh
    ("сәлеметсіз бе", Kind::Greeting),
    ("сәлеметсіздер ме", Kind::Greeting),
    ("салеметсиз бе", Kind::Greeting),
    ("сәлем", Kind::Greeting),
    ("салем", Kind::Greeting),
    ("қайырлы таң", Kind::Greeting),
    ("қайырлы күн", Kind::Greeting),
    ("қайырлы кеш", Kind::Greeting),
    ("рахмет", Kind::Thanks),
    ("рақмет", Kind::Thanks),
    ("жарайды", Kind::Thanks),
    ("түсінікті", Kind::Thanks),
    ("түсіндім", Kind::Thanks),
    ("сау болыңыз", Kind::Thanks),
    ("сау бол", Kind::Thanks),
    ("қалайсыз", Kind::Greeting),
    ("қалайсың", Kind::Greeting),
    ("жақсы", Kind::Filler),
    ("көп", Kind::Filler),
    ("үлкен", Kind::Filler),
];

/// The phrases, longest first, so "good morning" goes before "morning" and "hiya" before "hi".
static LONGEST_FIRST: LazyLock<Vec<(&'static str, Kind)>> = LazyLock::new(|| {
    let mut phrases = PHRASES.to_vec();
    phrases.sort_by_key(|(phrase, _)| std::cmp::Reverse(phrase.len()));
    phrases
});

/// A message with its social phrases taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stripped {
    /// The normalised text that is left.
    pub rest: String,
    /// What the message is, if nothing but social phrases, symbols and emoji was in it.
    pub social: Option<Social>,
}

/// Takes the social phrases out of a message. A phrase of a spaced script (English, Russian, Kazakh)
/// counts only as whole words: "hi" is not taken out of "this".
pub fn strip(text: &str) -> Stripped {
    let mut rest = normalize(text);
    let mut greeting = false;
    let mut thanks = false;
    for &(phrase, kind) in LONGEST_FIRST.iter() {
        let mut from = 0;
        while let Some(at) = rest[from..].find(phrase).map(|i| i + from) {
            let end = at + phrase.len();
            if stands_alone(&rest, at, end) {
                rest.replace_range(at..end, " ");
                greeting |= kind == Kind::Greeting;
                thanks |= kind == Kind::Thanks;
                from = at + 1;
            } else {
                from = end;
            }
        }
    }
    let says_nothing_else = !rest.chars().any(char::is_alphanumeric);
    let emoji = rest
        .chars()
        .any(|c| !c.is_ascii() && !c.is_alphanumeric() && !c.is_whitespace());
    let social = if !says_nothing_else {
        None
    } else if thanks || (emoji && !greeting) {
        // An emoji alone (👍, 🙏) acknowledges.
        Some(Social::Thanks)
    } else if greeting {
        Some(Social::Greeting)
    } else {
        None
    };
    Stripped { rest, social }
}

/// Whether `text[at..end]` is not part of a longer word of a spaced script.
fn stands_alone(text: &str, at: usize, end: usize) -> bool {
    let spaced_letter = |c: char| c.is_alphanumeric() && (c.is_ascii() || is_cyrillic(c));
    let before = text[..at].chars().next_back();
    let after = text[end..].chars().next();
    let first = text[at..end].chars().next();
    let last = text[at..end].chars().next_back();
    let glued_before = first.is_some_and(spaced_letter) && before.is_some_and(spaced_letter);
    let glued_after = last.is_some_and(spaced_letter) && after.is_some_and(spaced_letter);
    !glued_before && !glued_after
}

fn is_cyrillic(c: char) -> bool {
    matches!(c as u32, 0x0400..=0x04FF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings_and_thanks_alone_are_social_in_every_language() {
        for (text, expected) in [
            ("Hi!", Social::Greeting),
            ("hello there", Social::Greeting),
            ("thank you so much!!", Social::Thanks),
            ("ok great 👍", Social::Thanks),
            ("🙏", Social::Thanks),
            ("สวัสดีค่ะ", Social::Greeting),
            ("ได้ค่ะ ขอบคุณนะคะ", Social::Thanks),
            ("わかりました、ありがとうございます", Social::Thanks),
            ("Здравствуйте", Social::Greeting),
            ("спасибо большое!", Social::Thanks),
            ("сәлеметсіз бе", Social::Greeting),
            ("көп рахмет", Social::Thanks),
        ] {
            assert_eq!(strip(text).social, Some(expected), "{text}");
        }
    }

    #[test]
    fn a_question_with_a_greeting_is_not_social_and_keeps_its_question() {
        let stripped = strip("Hi, do you deliver? thanks");
        assert_eq!(stripped.social, None);
        let words: Vec<&str> = stripped
            .rest
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        assert_eq!(words, ["do", "you", "deliver"]);
        assert_eq!(strip("this").rest, "this");
    }

    #[test]
    fn fillers_symbols_or_nothing_are_not_social() {
        assert_eq!(strip("so").social, None);
        assert_eq!(strip("?!").social, None);
        assert_eq!(strip("").social, None);
        assert_eq!(strip("free?").social, None);
    }
}
