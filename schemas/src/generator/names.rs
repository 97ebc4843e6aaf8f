//! Realistic Chinese personal names for generated agents: a common surname (weighted
//! roughly by how common it is) and a one- or two-character given name.

use super::Rng;

/// Common surnames with rough weights (the most common first).
const SURNAMES: [(&str, f64); 30] = [
    ("王", 7.1),
    ("李", 7.0),
    ("张", 6.7),
    ("刘", 5.4),
    ("陈", 4.5),
    ("杨", 3.1),
    ("黄", 2.4),
    ("赵", 2.3),
    ("吴", 2.0),
    ("周", 1.9),
    ("徐", 1.4),
    ("孙", 1.4),
    ("马", 1.3),
    ("朱", 1.2),
    ("胡", 1.1),
    ("郭", 1.1),
    ("何", 1.0),
    ("林", 0.9),
    ("高", 0.9),
    ("罗", 0.9),
    ("郑", 0.9),
    ("梁", 0.8),
    ("谢", 0.7),
    ("宋", 0.6),
    ("唐", 0.6),
    ("许", 0.6),
    ("韩", 0.5),
    ("冯", 0.5),
    ("邓", 0.5),
    ("曹", 0.5),
];

/// Characters common in given names.
const GIVEN: [&str; 48] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀", "霞", "平", "刚", "桂", "英", "华", "玉", "萍", "红", "建", "文", "辉", "琳", "婷",
    "雪", "梅", "鑫", "晨", "宇", "欣", "佳", "颖", "浩", "倩", "思", "雨", "俊", "海", "嘉", "晓",
];

/// A name drawn from `rng`: about two in three given names have two characters.
pub fn chinese_name(rng: &mut Rng) -> String {
    let weights: Vec<f64> = SURNAMES.iter().map(|(_, w)| *w).collect();
    let mut name = SURNAMES[rng.weighted(&weights)].0.to_owned();
    let given: &&str = rng.pick(&GIVEN);
    name.push_str(given);
    if rng.unit() < 0.65 {
        let second: &&str = rng.pick(&GIVEN);
        name.push_str(second);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_two_or_three_chinese_characters_and_seeded() {
        let mut rng = Rng::stream(7, &[9]);
        let names: Vec<String> = (0..200).map(|_| chinese_name(&mut rng)).collect();
        assert!(names.iter().all(|n| (2..=3).contains(&n.chars().count())
            && n.chars().all(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))));
        let distinct: std::collections::BTreeSet<&String> = names.iter().collect();
        assert!(distinct.len() > 150, "{} distinct of 200", distinct.len());
        let mut again = Rng::stream(7, &[9]);
        assert_eq!(chinese_name(&mut again), names[0]);
    }
}
