//! A light Kazakh stemmer: Kazakh builds a word by gluing suffixes to its root (plural, possessive,
//! case, person, verb forms: тапсырыс-тар-ыңыз-ды), and a customer asks with other endings than the
//! business wrote. No maintained Kazakh stemmer exists as a crate, so this one strips the longest
//! matching common suffix from the end, at most [`MAX_STRIPS`] times, never leaving a stem shorter
//! than [`MIN_STEM`] letters. It over-stems a little (it cannot tell a suffix from the end of a root),
//! which costs nothing when entry and question are stemmed alike.

/// Fewest letters a stem keeps.
const MIN_STEM: usize = 3;
/// Most suffixes stripped from one word (root + plural + possessive + case is three).
const MAX_STRIPS: usize = 3;

/// Suffixes in every variant of the vowel and consonant harmony, grouped by what they mark.
const SUFFIXES: &[&str] = &[
    // person on verbs and predicates: "you (all) do", "we do", "I do"
    "йсыздар",
    "йсіздер",
    "асыздар",
    "есіздер",
    "сыздар",
    "сіздер",
    "ыңыздар",
    "іңіздер",
    "ймыз",
    "йміз",
    "йсыз",
    "йсіз",
    "асыз",
    "есіз",
    "амын",
    "емін",
    "ыңыз",
    "іңіз",
    "сыз",
    "сіз",
    "мыз",
    "міз",
    "мын",
    "мін",
    "бын",
    "бін",
    "пын",
    "пін",
    "ңыз",
    "ңіз",
    // verb forms: participles, present tense, verbal noun with the dative, conditional
    "атын",
    "етін",
    "йтын",
    "йтін",
    "ған",
    "ген",
    "қан",
    "кен",
    "уға",
    "уге",
    "ады",
    "еді",
    "йды",
    "йді",
    "сам",
    "сем",
    "са",
    "се",
    "ып",
    "іп",
    // plural
    "лар",
    "лер",
    "дар",
    "дер",
    "тар",
    "тер",
    // cases: genitive, ablative, locative, dative, accusative, instrumental
    "ның",
    "нің",
    "дың",
    "дің",
    "тың",
    "тің",
    "нан",
    "нен",
    "дан",
    "ден",
    "тан",
    "тен",
    "нда",
    "нде",
    "мен",
    "бен",
    "пен",
    "да",
    "де",
    "та",
    "те",
    "ға",
    "ге",
    "қа",
    "ке",
    "на",
    "не",
    "ны",
    "ні",
    "ды",
    "ді",
    "ты",
    "ті",
    // possessive of the third person, a question particle written without its space ("болама")
    "сы",
    "сі",
    "ма",
    "ме",
    "ба",
    "бе",
    "па",
    "пе",
    // a final vowel or the verbal noun's у ("жеткізе-міз", "төле-у")
    "ы",
    "і",
    "а",
    "е",
    "у",
];

/// The stem of one lower-cased word.
pub fn stem(word: &str) -> String {
    let mut stem = word;
    for _ in 0..MAX_STRIPS {
        let letters = stem.chars().count();
        let longest = SUFFIXES
            .iter()
            .filter(|suffix| {
                stem.ends_with(**suffix) && letters - suffix.chars().count() >= MIN_STEM
            })
            .max_by_key(|suffix| suffix.len());
        let Some(suffix) = longest else { break };
        stem = &stem[..stem.len() - suffix.len()];
    }
    stem.to_owned()
}

#[cfg(test)]
mod tests {
    use super::stem;

    #[test]
    fn inflected_forms_share_their_root() {
        for (forms, root) in [
            (&["тапсырыс", "тапсырысты", "тапсырысқа"][..], "тапсырыс"),
            (&["тауар", "тауарды", "тауардың"][..], "тауар"),
            (&["төлеу", "төлеуге", "төлесем"][..], "төл"),
            (&["жеткізу", "жеткіземіз", "жеткізесіздер"][..], "жеткіз"),
        ] {
            for form in forms {
                assert_eq!(stem(form), root, "{form}");
            }
        }
    }

    #[test]
    fn short_words_keep_their_letters() {
        assert_eq!(stem("бар"), "бар");
        assert_eq!(stem("ала"), "ала");
    }
}
