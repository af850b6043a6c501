//! The identifier formats of the detection record, checked on the way in and
//! generated when a producer leaves them out.
//!
//! Generated identifiers are derived from the record's content, never drawn at
//! random: a producer that resends a record without ids gets the same `FullId`
//! and so a duplicate, not a second copy.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::time::Timestamp;

/// `da` + .NET ticks of the alert's creation + `_` + a signed 32-bit number,
/// as in `da637370718981685665_16349121`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertId {
    pub created: Timestamp,
    pub discriminator: i32,
}

impl AlertId {
    /// Reads `da<ticks>_<i32>`; `None` when the text has another shape.
    pub fn parse(text: &str) -> Option<AlertId> {
        let rest = text.strip_prefix("da")?;
        let (ticks, number) = rest.split_once('_')?;
        if ticks.is_empty() || !ticks.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits = number.strip_prefix('-').unwrap_or(number);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(AlertId {
            created: Timestamp::from_dotnet_ticks(ticks.parse().ok()?)?,
            discriminator: number.parse().ok()?,
        })
    }

    /// An id for an alert created at `created`, its number taken from `seed`
    /// (the alert's identifying content), so the same alert gets the same id.
    pub fn derive(created: Timestamp, seed: &[u8]) -> AlertId {
        let digest = Sha256::digest(seed);
        let discriminator = i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        AlertId { created, discriminator }
    }
}

impl std::fmt::Display for AlertId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "da{}_{}", self.created.dotnet_ticks(), self.discriminator)
    }
}

/// True when `text` is 44 characters of standard base64 encoding 32 bytes.
pub fn is_ioc_unique_id(text: &str) -> bool {
    text.len() == 44 && BASE64.decode(text).is_ok_and(|bytes| bytes.len() == 32)
}

/// An `IocUniqueId` derived from the indicator's content.
pub fn derive_ioc_unique_id(content: &[u8]) -> String {
    BASE64.encode(Sha256::digest(content))
}

/// `AlertId:IocUniqueId`, the detection's unique key.
pub fn full_id(alert_id: &str, ioc_unique_id: &str) -> String {
    format!("{alert_id}:{ioc_unique_id}")
}

/// A `DeviceID` (40 lower-case hex) for a device known only by its DNS name.
pub fn derive_device_id(computer_dns_name: &str) -> String {
    let digest = Sha1::digest(computer_dns_name.to_lowercase().as_bytes());
    hex(&digest, false)
}

/// An `ExternalId` (40 upper-case hex) for a detection.
pub fn derive_external_id(full_id: &str) -> String {
    let digest = Sha1::digest(full_id.as_bytes());
    hex(&digest, true)
}

/// A positive 31-bit `ReportID` for a detection.
pub fn derive_report_id(full_id: &str) -> i64 {
    let digest = Sha256::digest(full_id.as_bytes());
    i64::from(u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) & 0x7fff_ffff)
}

/// True when `text` is `len` hexadecimal digits of either case.
pub fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// True when `text` is a GUID in its usual `8-4-4-4-12` spelling.
pub fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5 && groups.iter().zip([8, 4, 4, 4, 12]).all(|(group, len)| is_hex(group, len))
}

/// Hexadecimal digits of `bytes`.
pub fn hex(bytes: &[u8], upper: bool) -> String {
    let table = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(table[usize::from(b >> 4)]));
        out.push(char::from(table[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_id_round_trips_and_refuses_other_shapes() {
        let id = AlertId::parse("da637370718981685665_16349121").unwrap();
        assert_eq!(id.discriminator, 16_349_121);
        assert_eq!(id.to_string(), "da637370718981685665_16349121");
        assert_eq!(AlertId::parse("da637370718981685665_-5").unwrap().discriminator, -5);
        for bad in [
            "",
            "da_1",
            "da1_",
            "xx637370718981685665_1",
            "da637370718981685665",
            "da6373_1x",
            "da637370718981685665_99999999999",
        ] {
            assert!(AlertId::parse(bad).is_none(), "{bad:?} parsed");
        }
    }

    #[test]
    fn derived_ids_have_the_documented_formats() {
        let ioc = derive_ioc_unique_id(b"content");
        assert!(is_ioc_unique_id(&ioc), "{ioc}");
        assert!(is_ioc_unique_id("R4xEdgAvDb2LQl3BgHoA3NYqKmRSiIAG7dpxAJCYZhY="));
        assert!(!is_ioc_unique_id("R4xEdgAvDb2LQl3BgHoA3NYqKmRSiIAG7dpxAJCYZhY"));
        let device = derive_device_id("PC1.contoso.com");
        assert!(is_hex(&device, 40) && device == device.to_lowercase());
        assert_eq!(device, derive_device_id("pc1.CONTOSO.com"));
        let external = derive_external_id("x");
        assert!(is_hex(&external, 40) && external == external.to_uppercase());
        assert!((0..=i64::from(i32::MAX)).contains(&derive_report_id("x")));
        assert!(is_guid("b20af1d2-5990-4672-87f1-acc2a8ff7725"));
        assert!(!is_guid("b20af1d2-5990-4672-87f1acc2a8ff7725"));
    }
}
