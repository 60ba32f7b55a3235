//! Small domain types that can only hold valid values: parse, don't validate.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An email address that lettre accepts as a mailbox address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(s: &str) -> Result<Self, String> {
        let trimmed = s.trim();
        trimmed
            .parse::<lettre::Address>()
            .map(|_| EmailAddress(trimmed.to_string()))
            .map_err(|_| format!("`{s}` is not an email address"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after `@`, lower-cased, for allow-list checks.
    pub fn domain(&self) -> String {
        self.0
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default()
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EmailAddress {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EmailAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EmailAddress::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Ofsted's eight regions, by the ids used in records and config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Region {
    NorthWest,
    NorthEast,
    EastMidlands,
    WestMidlands,
    East,
    London,
    SouthEast,
    SouthWest,
}

impl Region {
    pub const ALL: [Region; 8] = [
        Region::NorthWest,
        Region::NorthEast,
        Region::EastMidlands,
        Region::WestMidlands,
        Region::East,
        Region::London,
        Region::SouthEast,
        Region::SouthWest,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Region::NorthWest => "north-west",
            Region::NorthEast => "north-east",
            Region::EastMidlands => "east-midlands",
            Region::WestMidlands => "west-midlands",
            Region::East => "east",
            Region::London => "london",
            Region::SouthEast => "south-east",
            Region::SouthWest => "south-west",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Region::NorthWest => "North West",
            Region::NorthEast => "North East, Yorkshire and the Humber",
            Region::EastMidlands => "East Midlands",
            Region::WestMidlands => "West Midlands",
            Region::East => "East of England",
            Region::London => "London",
            Region::SouthEast => "South East",
            Region::SouthWest => "South West",
        }
    }
}

impl FromStr for Region {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Region::ALL
            .into_iter()
            .find(|r| r.id() == s.trim())
            .ok_or_else(|| {
                let ids: Vec<_> = Region::ALL.iter().map(|r| r.id()).collect();
                format!("`{s}` is not a region (one of {})", ids.join(", "))
            })
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The inspection judgement that starts a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Judgement {
    RequiresImprovement,
    Inadequate,
}

impl Judgement {
    pub fn id(self) -> &'static str {
        match self {
            Judgement::RequiresImprovement => "requires_improvement",
            Judgement::Inadequate => "inadequate",
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Judgement::RequiresImprovement => "requires improvement",
            Judgement::Inadequate => "inadequate",
        }
    }
}

impl FromStr for Judgement {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "requires_improvement" => Ok(Judgement::RequiresImprovement),
            "inadequate" => Ok(Judgement::Inadequate),
            _ => Err(format!(
                "`{s}` is not a judgement (requires_improvement or inadequate)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_are_checked() {
        assert!(EmailAddress::parse("dcs@southshire.gov.uk").is_ok());
        for bad in [
            "",
            "no-at-sign",
            "a@",
            "@b.org",
            "a b@c.org",
            "x@y.org\r\nBcc: z@e.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            EmailAddress::parse("a@Example.ORG").unwrap().domain(),
            "example.org"
        );
    }

    #[test]
    fn regions_round_trip_and_unknown_ones_list_the_choices() {
        for r in Region::ALL {
            assert_eq!(r.id().parse::<Region>(), Ok(r));
        }
        let e = "midlands".parse::<Region>().unwrap_err();
        assert!(e.contains("north-west") && e.contains("south-west"), "{e}");
    }
}
