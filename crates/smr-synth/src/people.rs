//! Who the synthetic patients are: age and sex like England's population, common UK names,
//! addresses in real postcode districts with made-up streets and units, and NHS numbers from
//! the range that is never issued.

use smr_fhir::nhs_number;

use crate::rng::Rng;

/// England's population by five-year age band (ONS mid-2022 estimates, per cent, rounded):
/// the age distribution patients are drawn from. The last band is 90–99.
const AGE_BANDS: &[(u8, f64)] = &[
    (0, 5.4),
    (5, 5.9),
    (10, 6.1),
    (15, 5.8),
    (20, 6.1),
    (25, 6.6),
    (30, 6.9),
    (35, 6.7),
    (40, 6.4),
    (45, 6.1),
    (50, 6.8),
    (55, 6.7),
    (60, 5.9),
    (65, 5.0),
    (70, 5.0),
    (75, 3.9),
    (80, 2.6),
    (85, 1.5),
    (90, 0.9),
];

/// An age in whole years.
pub fn age(rng: &mut Rng) -> u8 {
    let start = *rng.weighted(AGE_BANDS);
    start + rng.below(if start == 90 { 10 } else { 5 }) as u8
}

/// Women outnumber men from late middle age on (women live longer).
pub fn is_female(rng: &mut Rng, age: u8) -> bool {
    let p = match age {
        0..=59 => 0.497,
        60..=79 => 0.525,
        80..=89 => 0.58,
        _ => 0.66,
    };
    rng.chance(p)
}

const SURNAMES: &[&str] = &[
    "Smith",
    "Jones",
    "Williams",
    "Taylor",
    "Brown",
    "Davies",
    "Evans",
    "Wilson",
    "Thomas",
    "Johnson",
    "Roberts",
    "Robinson",
    "Thompson",
    "Wright",
    "Walker",
    "White",
    "Edwards",
    "Hughes",
    "Green",
    "Hall",
    "Lewis",
    "Harris",
    "Clarke",
    "Patel",
    "Jackson",
    "Wood",
    "Turner",
    "Martin",
    "Cooper",
    "Hill",
    "Ward",
    "Morris",
    "Moore",
    "Clark",
    "Lee",
    "King",
    "Baker",
    "Harrison",
    "Morgan",
    "Allen",
    "James",
    "Scott",
    "Phillips",
    "Watson",
    "Davis",
    "Parker",
    "Price",
    "Bennett",
    "Young",
    "Griffiths",
    "Mitchell",
    "Kelly",
    "Cook",
    "Carter",
    "Richardson",
    "Bailey",
    "Collins",
    "Bell",
    "Shaw",
    "Murphy",
    "Miller",
    "Cox",
    "Richards",
    "Khan",
    "Marshall",
    "Anderson",
    "Simpson",
    "Ellis",
    "Adams",
    "Singh",
    "Begum",
    "Wilkinson",
    "Foster",
    "Chapman",
    "Powell",
    "Webb",
    "Rogers",
    "Gray",
    "Mason",
    "Ali",
    "Hunt",
    "Hussain",
    "Campbell",
    "Matthews",
    "Owen",
    "Palmer",
    "Holmes",
    "Mills",
    "Barnes",
    "Knight",
    "Lloyd",
    "Butler",
    "Russell",
    "Barker",
    "Fisher",
    "Stevens",
    "Jenkins",
    "Dixon",
    "Ahmed",
    "O'Brien",
    "O'Connor",
    "Nowak",
    "Kowalski",
    "Okafor",
    "Mensah",
    "Chowdhury",
    "Sharma",
    "Nguyen",
];

/// Given names by sex and generation (born before 1966 / 1966–1995 / after 1995).
const FEMALE_OLDER: &[&str] = &[
    "Margaret",
    "Patricia",
    "Susan",
    "Christine",
    "Linda",
    "Elizabeth",
    "Janet",
    "Carol",
    "Barbara",
    "Mary",
    "Jean",
    "Ann",
    "Sandra",
    "Valerie",
    "Brenda",
    "Maureen",
    "Pauline",
    "Kathleen",
    "Joan",
    "Sheila",
    "Dorothy",
    "Irene",
];
const FEMALE_MIDDLE: &[&str] = &[
    "Sarah", "Claire", "Emma", "Nicola", "Lisa", "Michelle", "Karen", "Rachel", "Joanne", "Helen",
    "Amanda", "Laura", "Kelly", "Gemma", "Louise", "Samantha", "Victoria", "Rebecca", "Zoë",
    "Aisha", "Nadia", "Priya",
];
const FEMALE_YOUNGER: &[&str] = &[
    "Olivia", "Amelia", "Isla", "Ava", "Emily", "Sophie", "Grace", "Mia", "Poppy", "Ella", "Lily",
    "Evie", "Chloe", "Jessica", "Freya", "Maryam", "Fatima", "Zara", "Hannah", "Ruby",
];
const MALE_OLDER: &[&str] = &[
    "John", "David", "Michael", "Peter", "Robert", "Anthony", "Brian", "Alan", "William", "James",
    "Keith", "Colin", "Kenneth", "Roy", "Derek", "Terence", "Graham", "Dennis", "Geoffrey",
    "Raymond", "Barry",
];
const MALE_MIDDLE: &[&str] = &[
    "Paul",
    "Mark",
    "Andrew",
    "Stephen",
    "Richard",
    "Christopher",
    "Darren",
    "Lee",
    "Jason",
    "Matthew",
    "Daniel",
    "Simon",
    "Gareth",
    "Craig",
    "Neil",
    "Stuart",
    "Wayne",
    "Mohammed",
    "Imran",
    "Rajesh",
    "Tomasz",
];
const MALE_YOUNGER: &[&str] = &[
    "Oliver", "George", "Harry", "Noah", "Jack", "Leo", "Arthur", "Muhammad", "Oscar", "Charlie",
    "Jacob", "Thomas", "Freddie", "Alfie", "Theo", "Archie", "Joshua", "Samuel", "Ethan", "Adam",
];

fn surname(rng: &mut Rng) -> &'static str {
    SURNAMES[rng.below(SURNAMES.len() as u64) as usize]
}

pub struct Name {
    pub family: &'static str,
    pub given: Vec<&'static str>,
}

pub fn name(rng: &mut Rng, female: bool, birth_year: i32) -> Name {
    let list = match (female, birth_year) {
        (true, ..=1965) => FEMALE_OLDER,
        (true, 1966..=1995) => FEMALE_MIDDLE,
        (true, _) => FEMALE_YOUNGER,
        (false, ..=1965) => MALE_OLDER,
        (false, 1966..=1995) => MALE_MIDDLE,
        (false, _) => MALE_YOUNGER,
    };
    let mut given = vec![*rng.pick(list)];
    if rng.chance(0.55) {
        let middle = *rng.pick(list);
        if middle != given[0] {
            given.push(middle);
        }
    }
    Name {
        family: surname(rng),
        given,
    }
}

/// A clinician's name (any generation of working age).
pub fn clinician_name(rng: &mut Rng) -> (Name, bool) {
    let female = rng.chance(0.55); // most GPs in England are women
    let list = if female { FEMALE_MIDDLE } else { MALE_MIDDLE };
    (
        Name {
            family: surname(rng),
            given: vec![*rng.pick(list)],
        },
        female,
    )
}

/// Real towns with real postcode districts; streets and inward codes are made up.
pub const TOWNS: &[(&str, &[&str])] = &[
    ("Leeds", &["LS6", "LS8", "LS11", "LS17"]),
    ("Sheffield", &["S6", "S10", "S11", "S35"]),
    ("Manchester", &["M14", "M20", "M21", "M40"]),
    ("Birmingham", &["B13", "B23", "B29", "B44"]),
    ("Bristol", &["BS3", "BS5", "BS7", "BS16"]),
    ("Norwich", &["NR2", "NR3", "NR5", "NR7"]),
    ("Plymouth", &["PL2", "PL4", "PL6", "PL9"]),
    ("Newcastle upon Tyne", &["NE3", "NE4", "NE6", "NE15"]),
    ("Leicester", &["LE2", "LE3", "LE4", "LE5"]),
    ("Reading", &["RG1", "RG2", "RG4", "RG30"]),
];

pub const STREETS: &[&str] = &[
    "High Street",
    "Station Road",
    "Church Lane",
    "Victoria Road",
    "Green Lane",
    "Manor Road",
    "Park Avenue",
    "Queen Street",
    "Mill Lane",
    "Grange Road",
    "Kings Road",
    "Chapel Street",
    "The Crescent",
    "Windsor Close",
    "Orchard Way",
    "Elm Grove",
    "Meadow View",
    "Beech Drive",
];

/// Letters used in the inward code's unit (CIKMOV are never used there).
const UNIT_LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";

pub struct Address {
    pub line: String,
    pub city: &'static str,
    pub postcode: String,
}

/// A home address in `town` (an index into [`TOWNS`]).
pub fn address(rng: &mut Rng, town: usize) -> Address {
    let (city, districts) = TOWNS[town % TOWNS.len()];
    let district = rng.pick(districts);
    let letter = |rng: &mut Rng| char::from(*rng.pick(UNIT_LETTERS));
    let postcode = format!("{district} {}{}{}", rng.below(10), letter(rng), letter(rng));
    let line = format!("{} {}", rng.range(1, 180), rng.pick(STREETS));
    Address {
        line,
        city,
        postcode,
    }
}

/// Ofcom reserves 07700 900000–900999 for drama: numbers that can never ring anyone.
pub fn mobile(rng: &mut Rng) -> String {
    format!("07700 900{:03}", rng.below(1000))
}

/// NHS numbers `999 nnn nnnn` with `nnn nnn` from 100000 to 999999: the 999 block is never
/// issued to a person, and 999 000 xxxx is left alone for hand-written examples and fixtures
/// (the README's `9990000018`), so loading a population never collides with them.
const NHS_SPAN: u64 = 900_000;
/// A multiplier coprime to `NHS_SPAN`, so `i ↦ (a·i + b) mod span` visits every number once.
const NHS_STEP: u64 = 387_731;

/// How many distinct valid NHS numbers the synthetic range holds (those whose Modulus 11
/// check would be 10 cannot exist).
pub fn nhs_capacity() -> usize {
    (0..NHS_SPAN)
        .filter(|&i| {
            nine_digits(i).is_some_and(|n| nhs_number::check_digit(n.as_bytes()).is_some())
        })
        .count()
}

fn nine_digits(i: u64) -> Option<String> {
    (i < NHS_SPAN).then(|| format!("999{:06}", 100_000 + i))
}

/// Yields distinct valid NHS numbers in a seed-dependent order.
pub struct NhsNumbers {
    offset: u64,
    i: u64,
}

impl NhsNumbers {
    pub fn new(seed: u64) -> NhsNumbers {
        NhsNumbers {
            offset: Rng::new(seed).below(NHS_SPAN),
            i: 0,
        }
    }
}

impl Iterator for NhsNumbers {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        while self.i < NHS_SPAN {
            let k = (NHS_STEP * self.i + self.offset) % NHS_SPAN;
            self.i += 1;
            let nine = nine_digits(k)?;
            if let Some(check) = nhs_number::check_digit(nine.as_bytes()) {
                return Some(format!("{nine}{check}"));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_is_coprime_to_span() {
        let gcd = |mut a: u64, mut b: u64| {
            while b != 0 {
                (a, b) = (b, a % b);
            }
            a
        };
        assert_eq!(gcd(NHS_STEP, NHS_SPAN), 1);
    }

    #[test]
    fn nhs_numbers_are_valid_distinct_and_synthetic() {
        let numbers: Vec<String> = NhsNumbers::new(3).take(5000).collect();
        let unique: std::collections::HashSet<_> = numbers.iter().collect();
        assert_eq!(unique.len(), numbers.len());
        for n in &numbers {
            assert!(nhs_number::is_valid(n), "{n}");
            assert!(n.starts_with("999") && &n[3..6] != "000", "{n}");
        }
    }

    #[test]
    fn ages_cover_the_range() {
        let mut rng = Rng::new(5);
        let ages: Vec<u8> = (0..20_000).map(|_| age(&mut rng)).collect();
        assert!(ages.iter().all(|&a| a < 100));
        let over_65 = ages.iter().filter(|&&a| a >= 65).count() as f64 / ages.len() as f64;
        // England: about 19% aged 65 and over.
        assert!((0.16..0.22).contains(&over_65), "{over_65}");
    }
}
