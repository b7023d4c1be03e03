//! Text analysis: what a text says, as terms an index can match, the same way for a knowledge entry and
//! for a customer's question.
//!
//! 1. **Normalised**: Unicode NFKC (full-width Latin and digits, half-width katakana and compatibility
//!    forms become their ordinary forms; `icu_normalizer`'s compiled data, already linked for URL host
//!    names), lower-cased, and Russian `ё` written `е` as most people type it.
//! 2. **Split by script.** Latin and Cyrillic words are separated by spaces and punctuation. Thai,
//!    Japanese, Chinese and Korean are not (Korean has spaces, but particles are glued to the word), so
//!    a run of those characters becomes overlapping character pairs: a word of two or more characters
//!    shares pairs with every text that contains it, whatever surrounds it, with no dictionary data in
//!    the zip.
//! 3. **Stop words dropped**: per language, words that say nothing about which entry answers (articles,
//!    pronouns, auxiliaries, polite particles). Question words ("where", "когда", "қашан") stay: they are
//!    what tells the opening hours from the address.
//! 4. **Stemmed**: English and Russian with the Snowball stemmers (`rust-stemmers`), Kazakh with a small
//!    suffix stripper ([`super::kazakh`]). A Cyrillic word without a Kazakh letter may be either
//!    language (customers in Kazakhstan mix both), so it carries both stems as alternatives.
//! 5. **Concepts named** ([`super::concepts`]): a word, or the pairs an unspaced spelling covers
//!    ("料金": 料, 金, 料金), carries the concepts it names beside its own terms.
//!
//! Japanese pairs of two hiragana are dropped: hiragana between kanji and katakana is mostly grammar
//! (particles, verb endings — "ますか", "ってる"), which paraphrases change freely. Thai polite particles
//! ("ครับ", "ค่ะ", "ไหม") are cut from the end of a Thai run and request words ("อยาก", "ขอ") from its
//! start, and the run is split at the words that glue a request together ("เอา", "ไป", "ให้", "กับ")
//! before it becomes pairs.

use std::borrow::Cow;
use std::ops::Range;

use icu_normalizer::ComposingNormalizerBorrowed;
use rust_stemmers::{Algorithm, Stemmer};

use super::{concepts, kazakh};

/// One unit of meaning in a text: a word (with its alternative stems) or a character pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The terms that stand for this unit; the first is the main one. Matching any of them matches it.
    /// None when the unit is only a concept, spelt in hiragana.
    pub terms: Vec<String>,
    /// The concepts it names ([`super::concepts`]: "cost" and "price" both name `~price`): matched
    /// like its terms, as weaker evidence.
    pub concepts: Vec<&'static str>,
    /// Whether it is a whole word (so a misspelling of it may be looked up), not a character pair.
    pub is_word: bool,
    /// A question word ("how", "сколько", "қанша"): it tells which kind of answer is wanted, but
    /// matching it alone is no evidence that an entry answers.
    pub is_question_word: bool,
    /// A word that frames a request rather than saying what it is about ("want", "today", "хочу",
    /// "керек"): when no entry uses it, it is not the subject the knowledge base lacks.
    pub is_weak: bool,
}

/// NFKC, lower case, `ё` → `е`.
pub fn normalize(text: &str) -> String {
    const NFKC: ComposingNormalizerBorrowed<'static> = ComposingNormalizerBorrowed::new_nfkc();
    let composed: Cow<'_, str> = NFKC.normalize(text);
    composed
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'ё' { 'е' } else { c })
        .collect()
}

/// The script classes the analysis treats differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    /// Words separated by spaces: Latin, Cyrillic, digits, and any other alphabet.
    Spaced,
    Thai,
    /// Han and kana (Japanese, Chinese).
    HanKana,
    Hangul,
}

fn script_of(c: char) -> Option<Script> {
    match c as u32 {
        0x0E00..=0x0E7F => Some(Script::Thai),
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF => {
            Some(Script::HanKana)
        }
        0x1100..=0x11FF | 0x3130..=0x318F | 0xAC00..=0xD7AF => Some(Script::Hangul),
        _ if c.is_alphanumeric() => Some(Script::Spaced),
        _ => None,
    }
}

/// Letters only Kazakh uses among the Cyrillic alphabets we meet.
fn has_kazakh_letter(word: &str) -> bool {
    word.chars()
        .any(|c| matches!(c, 'ә' | 'ғ' | 'қ' | 'ң' | 'ө' | 'ұ' | 'ү' | 'һ' | 'і'))
}

fn is_cyrillic(word: &str) -> bool {
    word.chars().any(|c| matches!(c as u32, 0x0400..=0x04FF))
}

/// The tokens of a text, in order (a repeated word appears again).
pub fn tokens(text: &str) -> Vec<Token> {
    let text = normalize(text);
    let mut out = Vec::new();
    let mut run = String::new();
    let mut run_script = None;
    // The spaced word before, stop words included: "how" makes "much" a price.
    let mut previous_word: Option<String> = None;
    for c in text.chars() {
        let script = script_of(c);
        if script != run_script && !run.is_empty() {
            push_run(&run, run_script, &mut previous_word, &mut out);
            run.clear();
        }
        run_script = script;
        if script.is_some() {
            run.push(c);
        }
    }
    if !run.is_empty() {
        push_run(&run, run_script, &mut previous_word, &mut out);
    }
    out
}

fn push_run(
    run: &str,
    script: Option<Script>,
    previous_word: &mut Option<String>,
    out: &mut Vec<Token>,
) {
    if script.is_some_and(|s| s != Script::Spaced) {
        *previous_word = None;
    }
    match script {
        None => {}
        Some(Script::Spaced) => {
            if let Some(token) = word_token(previous_word.as_deref(), run) {
                out.push(token);
            }
            *previous_word = Some(run.to_owned());
        }
        #[cfg(feature = "dictionary-segmentation")]
        Some(Script::Thai | Script::HanKana) => push_dictionary_words(run, out),
        Some(Script::Thai) => {
            for piece in thai_pieces(strip_thai_particles(run)) {
                let without_tone_marks: Vec<char> =
                    piece.chars().filter(|&c| !is_thai_tone_mark(c)).collect();
                push_naming_concepts(&without_tone_marks, pairs(&without_tone_marks, 0), out);
            }
        }
        Some(Script::HanKana) => {
            let chars: Vec<char> = run.chars().collect();
            push_naming_concepts(&chars, japanese(&chars), out);
        }
        Some(Script::Hangul) => {
            let chars: Vec<char> = run.chars().collect();
            push_naming_concepts(&chars, pairs(&chars, 0), out);
        }
    }
}

/// A token of an unspaced run and the run's characters it stands for.
type Spanned = (Token, Range<usize>);

/// Pushes an unspaced run's tokens, each with the concepts whose spelling covers it ("料金" gives
/// 料, 金 and 料金 `~price`); a concept spelt where no token is (in hiragana) is a token of its own.
fn push_naming_concepts(run: &[char], mut spanned: Vec<Spanned>, out: &mut Vec<Token>) {
    for spelled in concepts::in_run(run) {
        let mut named = false;
        for (token, span) in &mut spanned {
            if spelled.start <= span.start && span.end <= spelled.end {
                if !token.concepts.contains(&spelled.term) {
                    token.concepts.push(spelled.term);
                }
                named = true;
            }
        }
        if !named {
            out.push(Token {
                terms: Vec::new(),
                concepts: vec![spelled.term],
                is_word: false,
                is_question_word: false,
                is_weak: false,
            });
        }
    }
    out.extend(spanned.into_iter().map(|(token, _)| token));
}

/// Thai, Japanese and Chinese split into dictionary words by `icu_segmenter` (the alternative to
/// character pairs measured for issue 16): a Thai word without its tone marks unless it is a polite
/// particle, a Japanese word unless it is all hiragana (but for the kana question words).
#[cfg(feature = "dictionary-segmentation")]
fn push_dictionary_words(run: &str, out: &mut Vec<Token>) {
    use icu_segmenter::WordSegmenter;
    use icu_segmenter::options::WordBreakInvariantOptions;
    let segmenter = WordSegmenter::new_dictionary(WordBreakInvariantOptions::default());
    let breaks: Vec<usize> = segmenter.segment_str(run).collect();
    for pair in breaks.windows(2) {
        let word = &run[pair[0]..pair[1]];
        let first = word.chars().next().unwrap_or(' ');
        if script_of(first) == Some(Script::Thai) {
            if THAI_PARTICLES.contains(&word) {
                continue;
            }
            let word: String = word.chars().filter(|&c| !is_thai_tone_mark(c)).collect();
            if THAI_DICTIONARY_STOP_WORDS.contains(&word.as_str()) {
                continue;
            }
            let mut token = character_token(&word.chars().collect::<Vec<_>>());
            token.is_question_word |= THAI_QUESTION_WORDS.contains(&word.as_str());
            out.push(token);
        } else if word
            .chars()
            .all(|c| japanese_class(c) == Japanese::Hiragana)
        {
            if let Some(question_word) = KANA_QUESTION_WORDS.iter().find(|q| word.contains(**q)) {
                out.push(Token {
                    terms: vec![(*question_word).to_owned()],
                    concepts: Vec::new(),
                    is_word: false,
                    is_question_word: true,
                    is_weak: false,
                });
            }
        } else {
            out.push(character_token(&word.chars().collect::<Vec<_>>()));
        }
    }
}

/// Thai question words and words that say nothing about the subject, as the dictionary segments
/// them, tone marks left out.
#[cfg(feature = "dictionary-segmentation")]
const THAI_QUESTION_WORDS: &[&str] = &[
    "เทาไหร",
    "เทาไร",
    "กี",
    "ไหน",
    "อะไร",
    "ยังไง",
    "อยางไร",
    "เมือไหร",
    "ราคา",
];
#[cfg(feature = "dictionary-segmentation")]
const THAI_DICTIONARY_STOP_WORDS: &[&str] =
    &["ได", "ที", "ของ", "ให", "และ", "หรือ", "ก็", "จะ", "คน"];

/// Tone marks and the silencer: customers leave them out or put the wrong one.
pub(super) fn is_thai_tone_mark(c: char) -> bool {
    matches!(c as u32, 0x0E48..=0x0E4C)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Japanese {
    Kanji,
    Katakana,
    Hiragana,
}

fn japanese_class(c: char) -> Japanese {
    match c as u32 {
        0x3041..=0x309F => Japanese::Hiragana,
        0x30A0..=0x30FF => Japanese::Katakana,
        _ => Japanese::Kanji,
    }
}

/// Japanese question words written in hiragana: how much, where, when, how long.
const KANA_QUESTION_WORDS: &[&str] = &["いくら", "どこ", "いつ", "どのくらい", "どれくらい"];

/// A run of Han and kana, split where the kind of character changes: kanji words give their pairs
/// and each kanji (a one-kanji word such as 車 or 休 is common), katakana words their pairs, hiragana
/// — particles and verb endings — nothing.
fn japanese(run: &[char]) -> Vec<Spanned> {
    let mut out = Vec::new();
    let mut start = 0;
    for word in run.chunk_by(|a, b| japanese_class(*a) == japanese_class(*b)) {
        match japanese_class(word[0]) {
            Japanese::Hiragana => {
                // Grammar, but for the question words written in kana ("いくら", "どこ").
                let kana: String = word.iter().collect();
                for question_word in KANA_QUESTION_WORDS {
                    if let Some(at) = kana.find(question_word) {
                        let at = start + kana[..at].chars().count();
                        let token = Token {
                            terms: vec![(*question_word).to_owned()],
                            concepts: Vec::new(),
                            is_word: false,
                            is_question_word: true,
                            is_weak: false,
                        };
                        out.push((token, at..at + question_word.chars().count()));
                    }
                }
            }
            Japanese::Katakana => out.extend(pairs(word, start)),
            Japanese::Kanji => {
                if word.len() > 1 {
                    out.extend(
                        word.iter()
                            .enumerate()
                            .map(|(i, c)| (character_token(&[*c]), start + i..start + i + 1)),
                    );
                }
                out.extend(pairs(word, start));
            }
        }
        start += word.len();
    }
    out
}

fn character_token(chars: &[char]) -> Token {
    let text: String = chars.iter().collect();
    Token {
        is_question_word: QUESTION_WORDS.contains(&text.as_str()),
        terms: vec![text],
        concepts: Vec::new(),
        is_word: false,
        is_weak: false,
    }
}

/// Overlapping character pairs of an unspaced run starting at character `start`; a one-character
/// run is itself.
fn pairs(run: &[char], start: usize) -> Vec<Spanned> {
    match run.len() {
        0 => Vec::new(),
        1 => vec![(character_token(run), start..start + 1)],
        _ => run
            .windows(2)
            .enumerate()
            .map(|(i, pair)| (character_token(pair), start + i..start + i + 2))
            .collect(),
    }
}

/// A spaced word's token, `previous` the word before it: `None` for a stop word.
fn word_token(previous: Option<&str>, word: &str) -> Option<Token> {
    if is_stop_word(word) {
        return None;
    }
    let terms = if QUESTION_WORDS.contains(&word) {
        // Not stemmed: "қайда" (where) is not "қай" (which).
        vec![word.to_owned()]
    } else if is_cyrillic(word) {
        let kazakh = kazakh::stem(word);
        if has_kazakh_letter(word) {
            vec![kazakh]
        } else {
            let russian = stem(Algorithm::Russian, word);
            if kazakh == russian {
                vec![russian]
            } else {
                vec![russian, kazakh]
            }
        }
    } else if word.chars().all(|c| c.is_ascii_alphabetic()) {
        vec![stem(Algorithm::English, word)]
    } else {
        vec![word.to_owned()]
    };
    // An inflected question word ("қалайсыз", "скольких") is one too.
    let is_question_word = QUESTION_WORDS.contains(&word)
        || terms.iter().any(|t| QUESTION_WORDS.contains(&t.as_str()));
    // A number the entries never use is a quantity, a time or a date ("for 30 people", "at 9am"),
    // not a subject the knowledge base lacks.
    let is_weak = word.starts_with(|c: char| c.is_ascii_digit())
        || WEAK_WORDS.binary_search(&word).is_ok()
        || terms
            .iter()
            .any(|t| WEAK_WORDS.binary_search(&t.as_str()).is_ok());
    Some(Token {
        terms,
        concepts: concepts::of_word(previous, word),
        is_word: true,
        is_question_word,
        is_weak,
    })
}

/// A Cyrillic term spelt in Latin letters and stemmed as English: customers write brand and place
/// names in either alphabet ("каспи", "Kaspi"). `None` for a term with other letters.
pub(super) fn in_latin_letters(term: &str) -> Option<String> {
    let mut latin = String::with_capacity(term.len());
    for c in term.chars() {
        latin.push_str(match c {
            'а' | 'ә' => "a",
            'б' => "b",
            'в' => "v",
            'г' | 'ғ' => "g",
            'д' => "d",
            'е' | 'э' => "e",
            'ж' => "zh",
            'з' => "z",
            'и' | 'і' => "i",
            'й' | 'ы' => "y",
            'к' => "k",
            'қ' => "q",
            'л' => "l",
            'м' => "m",
            'н' => "n",
            'ң' => "ng",
            'о' | 'ө' => "o",
            'п' => "p",
            'р' => "r",
            'с' => "s",
            'т' => "t",
            'у' | 'ұ' | 'ү' => "u",
            'ф' => "f",
            'х' | 'һ' => "h",
            'ц' => "ts",
            'ч' => "ch",
            'ш' => "sh",
            'щ' => "shch",
            'ъ' | 'ь' => "",
            'ю' => "yu",
            'я' => "ya",
            _ => return None,
        });
    }
    Some(stem(Algorithm::English, &latin))
}

fn stem(algorithm: Algorithm, word: &str) -> String {
    Stemmer::create(algorithm).stem(word).into_owned()
}

/// Thai sentence-final particles (politeness, question) that end most customers' messages.
const THAI_PARTICLES: &[&str] = &[
    // "can", asking whether something can be done ("จ่ายเงินสดได้ไหม")
    "ได้",
    "หรือเปล่า",
    "หรือป่าว",
    "ครับ",
    "คับ",
    "ค่ะ",
    "ค่า",
    "คะ",
    "จ้า",
    "จ้ะ",
    "นะ",
    "ไหม",
    "มั้ย",
    "มั๊ย",
    "ป่าว",
    "หน่อย",
    "ฮะ",
];

/// Thai words that open a request without saying what it is about: "want", "may I", "need".
const THAI_REQUEST_WORDS: &[&str] = &["อยากจะ", "อยาก", "ขอ", "ต้องการ"];

/// Thai words that glue a request together — "take", "go", "for", "with", "if", "can", "also" —
/// as spelt with their tone marks. A run is split where one is: their pairs,
/// and the pairs across them ("รถไปจอด": "ถไ", "ปจ"), would weigh as words the entries lack.
const THAI_GLUE_WORDS: &[&str] = &["แล้ว", "ด้วย", "เอา", "ไป", "ให้", "กับ", "ถ้า", "ได้"];

/// A Thai run split where a glue word is, the glue word left out.
fn thai_pieces(run: &str) -> impl Iterator<Item = &str> {
    let mut pieces = Vec::new();
    let mut piece_start = 0;
    let mut at = 0;
    while at < run.len() {
        if let Some(word) = THAI_GLUE_WORDS.iter().find(|w| run[at..].starts_with(**w)) {
            pieces.push(&run[piece_start..at]);
            at += word.len();
            piece_start = at;
        } else {
            at += run[at..].chars().next().map_or(1, char::len_utf8);
        }
    }
    pieces.push(&run[piece_start..]);
    pieces.into_iter().filter(|piece| !piece.is_empty())
}

/// A Thai run without the particles that end it and the request words that open it.
fn strip_thai_particles(mut run: &str) -> &str {
    while let Some(rest) = THAI_PARTICLES
        .iter()
        .find_map(|particle| run.strip_suffix(particle))
    {
        run = rest;
    }
    THAI_REQUEST_WORDS
        .iter()
        .find_map(|word| run.strip_prefix(word).filter(|rest| !rest.is_empty()))
        .unwrap_or(run)
}

/// Question words (and Thai and Japanese question pairs) of the languages we analyse.
const QUESTION_WORDS: &[&str] = &[
    "how",
    "much",
    "many",
    "what",
    "when",
    "where",
    "which",
    "who",
    "why",
    "whats",
    // chat spellings of "what"
    "wat",
    "wot",
    "price",
    "cost",
    "сколько",
    "стоит",
    "стоят",
    "где",
    "когда",
    "как",
    "какой",
    "какая",
    "какие",
    "почем",
    "цена",
    "қанша",
    "қайда",
    "қашан",
    "қалай",
    "қандай",
    "тұрады",
    "нешеде",
    "何",
    // ราคา, price
    "รา",
    "าค",
    "คา",
    "เท",
    "ทา",
    "าไ",
    "ไห",
    "หร",
    "กี",
    "ไร",
];

/// Words that frame a request — wanting, needing, asking, getting, doing (the stems of "сделать",
/// "жасау"), when ("tomorrow", "next", "дня") — rather than name its subject; sorted. Unlike
/// stop words they are indexed: a knowledge base that uses one ("Can I order for today?") matches it
/// as any word.
const WEAK_WORDS: &[&str] = &[
    "already",
    "also",
    "exactly",
    "get",
    "know",
    "later",
    "like",
    "need",
    "next",
    "now",
    "possible",
    "really",
    "tell",
    "tmrw",
    "today",
    "tomorrow",
    "tonight",
    "wanna",
    "want",
    "бүгін",
    "вечером",
    "возможна",
    "возможно",
    "дела",
    "день",
    "дней",
    "дня",
    "ертең",
    "жас",
    "жаса",
    "завтра",
    "здесь",
    "келеді",
    "келесі",
    "керек",
    "мүмкін",
    "надо",
    "нужно",
    "подскажите",
    "реально",
    "сдела",
    "сегодня",
    "сейчас",
    "скажите",
    "след",
    "тут",
    "утром",
    "хотел",
    "хотела",
    "хочу",
    "что",
    "чтобы",
    "қазір",
];

fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.binary_search(&word).is_ok()
}

/// English, Russian and Kazakh stop words, sorted (a binary search finds them). Short on purpose:
/// only words that never tell one business question from another.
const STOP_WORDS: &[&str] = &[
    "a",
    "am",
    "an",
    "and",
    "any",
    "are",
    "be",
    "been",
    "but",
    "by",
    "can",
    "could",
    "d",
    "did",
    "do",
    "does",
    "for",
    "from",
    "guys",
    "had",
    "has",
    "have",
    "here",
    "i",
    "if",
    "im",
    "in",
    "is",
    "it",
    "its",
    "just",
    "ll",
    "m",
    "may",
    "me",
    "my",
    "of",
    "on",
    "or",
    "our",
    "please",
    "pls",
    "plz",
    "r",
    "re",
    "s",
    "should",
    "so",
    "some",
    "t",
    "that",
    "the",
    "there",
    "this",
    "to",
    "u",
    "ur",
    "us",
    "ve",
    "was",
    "we",
    "were",
    "will",
    "with",
    "would",
    "you",
    "your",
    "а",
    "ба",
    "бар",
    "бе",
    "бен",
    "бола",
    "болады",
    "болама",
    "бы",
    "біз",
    "бұл",
    "в",
    "вам",
    "вас",
    "ваш",
    "ваша",
    "ваше",
    "ваши",
    "во",
    "вы",
    "да",
    "де",
    "для",
    "есть",
    "еще",
    "ещё",
    "же",
    "және",
    "за",
    "и",
    "или",
    "иә",
    "к",
    "ли",
    "ма",
    "ме",
    "мен",
    "мне",
    "можно",
    "мы",
    "на",
    "нам",
    "нас",
    "не",
    "немесе",
    "но",
    "ну",
    "о",
    "об",
    "осы",
    "от",
    "па",
    "пе",
    "пен",
    "пжл",
    "пожалуйста",
    "с",
    "со",
    "сіз",
    "сіздер",
    "та",
    "те",
    "то",
    "у",
    "это",
    "я",
    "үшін",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn main_terms(text: &str) -> Vec<String> {
        tokens(text)
            .into_iter()
            .filter_map(|t| t.terms.first().cloned())
            .collect()
    }

    #[test]
    fn stop_words_are_sorted_for_the_binary_search() {
        for list in [STOP_WORDS, WEAK_WORDS] {
            let mut sorted = list.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted, list);
        }
    }

    #[test]
    fn text_is_normalised_before_it_is_split() {
        assert_eq!(normalize("Ｈｏｕｒｓ ＯＫ"), "hours ok");
        assert_eq!(normalize("ｶｯﾄ"), "カット");
        assert_eq!(normalize("Ёлка"), "елка");
    }

    #[test]
    fn english_words_are_stemmed_and_stop_words_dropped() {
        assert_eq!(main_terms("Where are you located?"), ["where", "locat"]);
        assert_eq!(main_terms("deliveries"), main_terms("delivery"));
    }

    #[test]
    fn russian_inflections_share_a_stem() {
        assert_eq!(main_terms("букета"), main_terms("букеты"));
        assert_eq!(main_terms("доставкой"), main_terms("доставка"));
    }

    #[test]
    fn a_cyrillic_term_has_a_latin_spelling() {
        assert_eq!(in_latin_letters("каспи").as_deref(), Some("kaspi"));
        assert_eq!(in_latin_letters("вайфай").as_deref(), Some("vayfay"));
        assert_eq!(in_latin_letters("kaspi"), None);
    }

    #[test]
    fn a_cyrillic_word_without_kazakh_letters_carries_both_stems() {
        let token = &tokens("тапсырысты")[0];
        assert!(token.terms.contains(&"тапсырыс".to_owned()), "{token:?}");
        let kazakh_only = &tokens("тапсырысқа")[0];
        assert_eq!(kazakh_only.terms, ["тапсырыс"]);
    }

    #[test]
    fn unspaced_scripts_become_character_pairs() {
        // Kanji words give each kanji and their pairs; hiragana (particles, endings) gives nothing.
        assert_eq!(main_terms("予約OK"), ["予", "約", "予約", "ok"]);
        assert_eq!(main_terms("予約できますか"), main_terms("予約"));
        assert_eq!(main_terms("カット"), ["カッ", "ット"]);
        // Thai tone marks and sentence-final particles are left out.
        assert_eq!(main_terms("นวดเท้าครับ"), ["นว", "วด", "ดเ", "เท", "ทา"]);
        // So are the words that glue a Thai request together ("take the car to park").
        assert_eq!(main_terms("เอารถไปจอดได้ไหม"), ["รถ", "จอ", "อด"]);
    }

    #[test]
    fn a_concept_goes_with_the_tokens_its_spelling_covers() {
        let concepts = |text: &str| -> Vec<Vec<&str>> {
            tokens(text).into_iter().map(|t| t.concepts).collect()
        };
        assert_eq!(concepts("料金"), [["~price"], ["~price"], ["~price"]]);
        assert_eq!(concepts("how much"), [vec![], vec!["~price"]]);
        // Spelt in hiragana, where no token is, it is a token of its own.
        let kids = tokens("こどもは？");
        assert_eq!(kids.len(), 1);
        assert!(kids[0].terms.is_empty());
        assert_eq!(kids[0].concepts, ["~children"]);
    }
}
