//! Concepts: what a small business's customers ask about, whatever words they use. "How much", "price",
//! "cost", "сколько стоит", "цена", "いくら", "値段", "料金", "ราคา", "бағасы" all ask the price; a
//! business writes one of them in its FAQ, a customer another. Each word or spelling below is read as
//! its concept too, a term no text produces (`~price`), so an entry and a question that name one
//! concept in different words share it (the index scores such a match below one of the word itself).
//!
//! The lexicon is the general vocabulary of a small business's FAQ — hours, days, location, price,
//! booking, delivery, home, payment, installments, parking, cancellation, returns, contact,
//! discounts, orders, stock, sizes, duration, children, gifts, groups — in English, Russian, Kazakh,
//! Thai and Japanese. A word that means something else in customer messages ("card": payment or gift
//! card; "flat", "left") is left out. The lexicon is a few kilobytes of static strings, its spellings
//! normalised once, on first use.

use std::sync::LazyLock;

use super::analysis::{is_thai_tone_mark, normalize};

/// One thing customers ask about and the words that name it.
struct Concept {
    /// The term it is indexed as: `~` and a name, which no analysed text produces.
    term: &'static str,
    /// Lower-cased words of spaced scripts (Latin, Cyrillic) that name it. A trailing `*` takes every
    /// word starting so (the inflections: "deliver*", "доставк*", "жеткіз*"); two words joined by a
    /// space name it together, the concept going to the second ("how much").
    words: &'static [&'static str],
    /// Thai, Japanese and Chinese spellings that name it, found anywhere in an unspaced run (Thai
    /// matched without tone marks, which customers leave out).
    spellings: &'static [&'static str],
}

const CONCEPTS: &[Concept] = &[
    Concept {
        term: "~price",
        words: &[
            "price*",
            "cost*",
            "how much",
            "fee",
            "fees",
            "charge",
            "charges",
            "expensive",
            "cheap*",
            "цен*",
            "стоимост*",
            "сколько стоит",
            "сколько стоят",
            "почем",
            "прайс*",
            "баға*",
            "қанша тұрады",
            "құны*",
        ],
        spellings: &[
            "ราคา",
            "เท่าไหร่",
            "เท่าไร",
            "กี่บาท",
            "ค่าบริการ",
            "料金",
            "値段",
            "価格",
            "いくら",
            "何円",
            "代金",
            "費用",
        ],
    },
    Concept {
        term: "~hours",
        words: &[
            "open*",
            "close",
            "closes",
            "closed",
            "closing",
            "hour",
            "hours",
            "what time",
            "работ*",
            "открыва*",
            "открыт",
            "открыта",
            "открыто",
            "открыты",
            "закрыва*",
            "закрыт*",
            "график*",
            "режим*",
            "во сколько",
            "до скольки",
            "ашы*",
            "жабы*",
            "жұмыс*",
            "нешеде",
            "нешеге",
        ],
        spellings: &[
            "เปิด",
            "ปิด",
            "กี่โมง",
            "เวลาทำการ",
            "営業",
            "開い",
            "開店",
            "閉店",
            "何時",
        ],
    },
    Concept {
        term: "~day",
        words: &[
            "monday*",
            "tuesday*",
            "wednesday*",
            "thursday*",
            "friday*",
            "saturday*",
            "sunday*",
            "weekend*",
            "weekday*",
            "holiday*",
            "понедельник*",
            "вторник*",
            "среда",
            "среду",
            "четверг*",
            "пятниц*",
            "суббот*",
            "воскресен*",
            "выходн*",
            "будн*",
            "праздник*",
            "дүйсенбі*",
            "сейсенбі*",
            "сәрсенбі*",
            "бейсенбі*",
            "жұма*",
            "сенбі*",
            "жексенбі*",
            "демалыс*",
            "мереке*",
        ],
        spellings: &[
            "วันจันทร์",
            "วันอังคาร",
            "วันพุธ",
            "วันพฤหัส",
            "วันศุกร์",
            "วันเสาร์",
            "วันอาทิตย์",
            "วันหยุด",
            "月曜",
            "火曜",
            "水曜",
            "木曜",
            "金曜",
            "土曜",
            "日曜",
            "土日",
            "祝日",
            "定休",
            "休み",
            "休業",
        ],
    },
    Concept {
        term: "~location",
        words: &[
            "where",
            "wheres",
            "locat*",
            "address*",
            "direction*",
            "street",
            "find",
            "nearest",
            "situated",
            "где",
            "адрес*",
            "находит*",
            "найти",
            "добрат*",
            "расположен*",
            "метро",
            "қайда",
            "мекенжай*",
            "орналас*",
            "қай жерде",
        ],
        spellings: &[
            "ที่ไหน",
            "ที่อยู่",
            "อยู่ไหน",
            "แถวไหน",
            "ตรงไหน",
            "เดินทาง",
            "ใกล้",
            "どこ",
            "場所",
            "住所",
            "アクセス",
            "最寄",
            "行き方",
        ],
    },
    Concept {
        term: "~delivery",
        words: &[
            "deliver*",
            "shipping",
            "courier*",
            "достав*",
            "курьер*",
            "привез*",
            "жеткіз*",
        ],
        spellings: &["จัดส่ง", "ส่งของ", "เดลิเวอรี่", "配達", "配送", "宅配", "届け"],
    },
    Concept {
        term: "~home",
        words: &[
            "home",
            "house",
            "my place",
            "apartment",
            "дом",
            "домой",
            "квартир*",
            "үй",
            "үйге",
            "үйде",
            "пәтер*",
        ],
        spellings: &["บ้าน", "自宅"],
    },
    Concept {
        term: "~payment",
        words: &[
            "pay",
            "paying",
            "paid",
            "payment*",
            "cash",
            "visa",
            "mastercard",
            "оплат*",
            "оплач*",
            "платить",
            "плачу",
            "платеж*",
            "заплат*",
            "наличн*",
            "перевод*",
            "төле*",
            "аудар*",
            "қолма",
        ],
        spellings: &[
            "จ่าย",
            "ชำระ",
            "โอน",
            "บัตรเครดิต",
            "เงินสด",
            "支払",
            "払",
            "決済",
            "現金",
            "クレジット",
            "クレカ",
            "キャッシュレス",
        ],
    },
    Concept {
        term: "~installments",
        words: &["installment*", "instalment*", "рассрочк*", "бөліп"],
        spellings: &["ผ่อน", "分割"],
    },
    Concept {
        term: "~booking",
        words: &[
            "book",
            "booked",
            "booking*",
            "reserv*",
            "appointment*",
            "брон*",
            "запис*",
            "жазыл*",
        ],
        spellings: &["จอง", "นัด", "คิว", "予約"],
    },
    Concept {
        term: "~cancel",
        words: &[
            "cancel*",
            "reschedul*",
            "postpone*",
            "отмен*",
            "перенес*",
            "перенос*",
            "болдырма*",
        ],
        spellings: &["ยกเลิก", "เลื่อน", "キャンセル", "取り消", "取消"],
    },
    Concept {
        term: "~return",
        words: &[
            "refund*",
            "return*",
            "money back",
            "exchang*",
            "возврат*",
            "вернуть",
            "обмен*",
            "қайтар*",
            "ауыстыр*",
        ],
        spellings: &["คืนเงิน", "คืนสินค้า", "เปลี่ยนสินค้า", "返品", "返金", "交換"],
    },
    Concept {
        term: "~contact",
        words: &[
            "phone*",
            "call",
            "calling",
            "contact*",
            "whatsapp",
            "телефон*",
            "позвон*",
            "звон*",
            "контакт*",
            "хабарлас*",
            "қоңырау*",
        ],
        spellings: &["โทร", "เบอร์", "ติดต่อ", "電話", "連絡"],
    },
    Concept {
        term: "~parking",
        words: &["park", "parking", "парков*", "тұрақ*"],
        spellings: &["จอด", "駐車", "パーキング", "停め"],
    },
    Concept {
        term: "~discount",
        words: &[
            "discount*",
            "promo*",
            "coupon*",
            "скидк*",
            "акци*",
            "промокод*",
            "жеңілдік*",
        ],
        spellings: &["ส่วนลด", "โปรโมชั่น", "割引", "クーポン"],
    },
    Concept {
        term: "~order",
        words: &["order*", "preorder*", "заказ*", "тапсырыс*"],
        spellings: &["สั่ง", "注文"],
    },
    Concept {
        term: "~stock",
        words: &[
            "stock",
            "availab*",
            "sold out",
            "наличии",
            "осталось",
            "остались",
            "қалды",
            "қойма*",
            "таусыл*",
        ],
        spellings: &["มีของ", "在庫"],
    },
    Concept {
        term: "~size",
        words: &["size*", "xs", "xl", "xxl", "xxxl", "размер*", "өлшем*"],
        spellings: &["ไซส์", "ขนาด", "サイズ"],
    },
    Concept {
        term: "~duration",
        words: &["how long", "долго", "сколько времени", "қанша уақыт"],
        spellings: &[
            "กี่นาที",
            "นานแค่ไหน",
            "何分",
            "何時間",
            "所要",
            "どのくらい",
            "どれくらい",
        ],
    },
    Concept {
        term: "~children",
        words: &[
            "kid",
            "kids",
            "child*",
            "дети",
            "детей",
            "детям",
            "детск*",
            "ребен*",
            "бала*",
        ],
        spellings: &[
            "เด็ก",
            "子供",
            "子ども",
            "こども",
            "キッズ",
            "小学生",
            "息子",
            "娘",
        ],
    },
    Concept {
        term: "~diet",
        words: &[
            "vegan*",
            "vegetarian*",
            "gluten*",
            "celiac",
            "coeliac",
            "allerg*",
            "halal",
            "lactose",
            "dairy",
            "веган*",
            "вегетариан*",
            "глютен*",
            "аллерг*",
            "халал*",
        ],
        spellings: &[
            "มังสวิรัติ",
            "วีแกน",
            "ฮาลาล",
            "アレルギー",
            "ヴィーガン",
            "ベジタリアン",
            "グルテン",
        ],
    },
    Concept {
        term: "~gift",
        words: &[
            "gift*",
            "voucher*",
            "certificate*",
            "подар*",
            "сертификат*",
            "сыйлық*",
        ],
        spellings: &["ของขวัญ", "บัตรของขวัญ", "ギフト", "商品券"],
    },
    Concept {
        term: "~group",
        words: &[
            "people",
            "person",
            "persons",
            "guest*",
            "group*",
            "человек*",
            "гост*",
            "персон*",
            "адам*",
            "кісі*",
        ],
        spellings: &["人数", "名様"],
    },
];

/// The concepts a spaced word names, `previous` being the word before it, if any.
pub fn of_word(previous: Option<&str>, word: &str) -> Vec<&'static str> {
    CONCEPTS
        .iter()
        .filter(|concept| {
            concept
                .words
                .iter()
                .any(|names| match names.split_once(' ') {
                    Some((first, second)) => {
                        previous.is_some_and(|p| names_word(first, p)) && names_word(second, word)
                    }
                    None => names_word(names, word),
                })
        })
        .map(|concept| concept.term)
        .collect()
}

/// Whether a lexicon word (`*` ending a prefix) is `word`.
fn names_word(names: &str, word: &str) -> bool {
    match names.strip_suffix('*') {
        Some(prefix) => word.starts_with(prefix),
        None => word == names,
    }
}

/// Each concept's spellings as the analysis reads an unspaced run: normalised (NFKC writes Thai ำ as
/// ํ and า) and without Thai tone marks. Worked out on first use.
static SPELLINGS: LazyLock<Vec<(&'static str, Vec<char>)>> = LazyLock::new(|| {
    CONCEPTS
        .iter()
        .flat_map(|concept| {
            concept.spellings.iter().map(|spelling| {
                let letters = normalize(spelling)
                    .chars()
                    .filter(|&c| !is_thai_tone_mark(c))
                    .collect();
                (concept.term, letters)
            })
        })
        .collect()
});

/// Where an unspaced run names a concept: the concept and the run's characters that name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spelled {
    pub term: &'static str,
    pub start: usize,
    pub end: usize,
}

/// The concepts an unspaced run (Thai without its tone marks) names, with where, in characters. A
/// spelling inside a longer one found at the same place is left out: "何時間" (how many hours) is a
/// duration, not "何時" (what time).
pub fn in_run(run: &[char]) -> Vec<Spelled> {
    let mut found: Vec<Spelled> = Vec::new();
    for (term, spelling) in SPELLINGS.iter() {
        for start in 0..(run.len() + 1).saturating_sub(spelling.len()) {
            let end = start + spelling.len();
            if run[start..end] == spelling[..] {
                found.push(Spelled { term, start, end });
            }
        }
    }
    let inside_a_longer = |s: &Spelled| {
        found.iter().any(|other| {
            other.start <= s.start
                && s.end <= other.end
                && other.end - other.start > s.end - s.start
        })
    };
    found
        .iter()
        .filter(|s| !inside_a_longer(s))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn concepts_of(text: &str) -> Vec<&'static str> {
        let words: Vec<&str> = text.split(' ').collect();
        words
            .iter()
            .enumerate()
            .flat_map(|(i, word)| of_word(i.checked_sub(1).map(|p| words[p]), word))
            .collect()
    }

    #[test]
    fn concept_terms_are_distinct_and_marked() {
        let mut terms: Vec<&str> = CONCEPTS.iter().map(|c| c.term).collect();
        assert!(terms.iter().all(|t| t.starts_with('~')));
        terms.sort_unstable();
        terms.dedup();
        assert_eq!(terms.len(), CONCEPTS.len());
    }

    #[test]
    fn words_are_written_as_the_analysis_reads_them() {
        for concept in CONCEPTS {
            for names in concept.words {
                assert_eq!(normalize(names), *names);
            }
        }
    }

    #[test]
    fn a_spelling_is_found_as_the_analysis_reads_it() {
        // NFKC splits ำ: "ชำระเงิน" (pay) is read as ช ํ า ร ะ...
        let run: Vec<char> = normalize("ชำระเงิน").chars().collect();
        assert_eq!(in_run(&run)[0].term, "~payment");
    }

    #[test]
    fn words_name_concepts_with_their_inflections_and_pairs() {
        assert_eq!(concepts_of("how much"), ["~price"]);
        assert_eq!(concepts_of("prices"), ["~price"]);
        assert_eq!(concepts_of("сколько стоит"), ["~price"]);
        assert_eq!(concepts_of("цена"), ["~price"]);
        assert_eq!(concepts_of("бағасы"), ["~price"]);
        assert_eq!(concepts_of("қанша тұрады"), ["~price"]);
        assert_eq!(concepts_of("доставкой"), ["~delivery"]);
        assert_eq!(concepts_of("жеткізесіздер"), ["~delivery"]);
        assert!(concepts_of("much").is_empty());
        assert!(concepts_of("bread").is_empty());
    }

    #[test]
    fn a_longer_spelling_wins_over_one_inside_it() {
        let run: Vec<char> = "何時間かかる".chars().collect();
        assert_eq!(
            in_run(&run),
            [Spelled {
                term: "~duration",
                start: 0,
                end: 3
            }]
        );
    }
}
