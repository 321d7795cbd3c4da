//! Encoding names as people give them: every WHATWG label (what `encoding_rs` knows), and the
//! names other tools use for the same encodings (Python's `cp949`, `latin_1`, `utf-8-sig`).

use encoding_rs::{
    BIG5, EUC_KR, Encoding, GBK, MACINTOSH, REPLACEMENT, SHIFT_JIS, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_874,
    WINDOWS_1252,
};

/// Names in common use that are no WHATWG label, after lowercasing and `_` made `-`.
const ALIASES: [(&str, &Encoding); 21] = [
    ("cp949", EUC_KR),
    ("ms949", EUC_KR),
    ("uhc", EUC_KR),
    ("cp936", GBK),
    ("ms936", GBK),
    ("cp932", SHIFT_JIS),
    ("cp950", BIG5),
    ("ms950", BIG5),
    ("cp874", WINDOWS_874),
    ("latin-1", WINDOWS_1252),
    ("ansi", WINDOWS_1252),
    ("u8", UTF_8),
    ("utf-8-sig", UTF_8),
    ("utf8-sig", UTF_8),
    ("utf16", UTF_16LE),
    ("utf16le", UTF_16LE),
    ("utf-16-le", UTF_16LE),
    ("utf-16-be", UTF_16BE),
    ("utf16be", UTF_16BE),
    ("mac-roman", MACINTOSH),
    ("macroman", MACINTOSH),
];

/// The encoding `label` names, or `None`; never the replacement encoding, which decodes
/// nothing (it stands for ISO-2022-KR and others that browsers refuse).
pub fn encoding_for_label(label: &str) -> Option<&'static Encoding> {
    let label = label.trim().to_ascii_lowercase();
    let dashed = label.replace('_', "-");
    Encoding::for_label(label.as_bytes())
        .or_else(|| Encoding::for_label(dashed.as_bytes()))
        .or_else(|| ALIASES.iter().find(|(name, _)| *name == dashed).map(|(_, e)| *e))
        .filter(|encoding| *encoding != REPLACEMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_aliases_name_their_encodings() {
        for (label, want) in [
            ("euc-kr", Some("EUC-KR")),
            ("CP949", Some("EUC-KR")),
            (" windows-949 ", Some("EUC-KR")),
            ("cp1252", Some("windows-1252")),
            ("latin1", Some("windows-1252")),
            ("Latin_1", Some("windows-1252")),
            ("ISO-8859-1", Some("windows-1252")),
            ("utf8", Some("UTF-8")),
            ("UTF_8", Some("UTF-8")),
            ("utf-8-sig", Some("UTF-8")),
            ("utf_16_le", Some("UTF-16LE")),
            ("utf16be", Some("UTF-16BE")),
            ("shift_jis", Some("Shift_JIS")),
            ("cp932", Some("Shift_JIS")),
            ("gbk", Some("GBK")),
            ("cp936", Some("GBK")),
            ("big5", Some("Big5")),
            ("cp1251", Some("windows-1251")),
            ("koi8_r", Some("KOI8-R")),
            ("macroman", Some("macintosh")),
            ("iso-2022-kr", None),
            ("cp437", None),
            ("", None),
        ] {
            assert_eq!(encoding_for_label(label).map(Encoding::name), want, "{label:?}");
        }
    }

    #[test]
    fn every_alias_names_a_real_encoding_and_is_no_whatwg_label() {
        for (name, _) in ALIASES {
            let whatwg = Encoding::for_label(name.as_bytes()).map(Encoding::name);
            assert_eq!(whatwg, None, "{name} is a WHATWG label already");
        }
    }
}
