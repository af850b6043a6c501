//! Filling in the placeholders of the catalog's command lines, folders and
//! URLs (`{user}`, `{hex8}`, `{url}`, ...), so that one table entry yields many
//! distinct but plausible indicators.

use std::fmt::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use siemgate_model::ids;

use crate::catalog;
use crate::rng::Rng;

/// Expands templates for one indicator. A placeholder drawn once keeps its
/// value for the rest of the indicator, so a command that writes
/// `{hex8}.exe` and then starts `{hex8}.exe` names the same file twice.
#[derive(Debug)]
pub(crate) struct Expander<'a> {
    /// The account name, without its domain, that `{user}` stands for.
    pub user: &'a str,
    /// The DNS domain that `{domain}` stands for.
    pub domain: &'a str,
    /// Devices `{peer}` may name.
    pub peers: &'a [crate::Device],
    hex8: Option<String>,
    url: Option<String>,
    ip: Option<String>,
}

impl<'a> Expander<'a> {
    pub fn new(user: &'a str, domain: &'a str, peers: &'a [crate::Device]) -> Expander<'a> {
        Expander { user, domain, peers, hex8: None, url: None, ip: None }
    }

    /// `template` with every known `{name}` replaced; unknown ones stay as written.
    pub fn expand(&mut self, rng: &mut Rng, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 48);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else { break };
            self.write_value(rng, &rest[open + 1..open + close], &mut out);
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        out
    }

    /// The external URL of this indicator, drawn on first use.
    pub fn url(&mut self, rng: &mut Rng) -> String {
        if let Some(url) = &self.url {
            return url.clone();
        }
        let scheme = if rng.percent(80) { "https" } else { "http" };
        let host = rng.pick(&catalog::EXTERNAL_HOSTS);
        let path = *rng.pick(&catalog::URL_PATHS);
        let url = format!("{scheme}://{host}{}", self.expand(rng, path));
        self.url = Some(url.clone());
        url
    }

    /// The external address of this indicator, drawn on first use.
    pub fn ip(&mut self, rng: &mut Rng) -> String {
        self.ip
            .get_or_insert_with(|| {
                let network = rng.pick(&catalog::DOCUMENTATION_NETWORKS);
                format!("{network}.{}", 1 + rng.below(254))
            })
            .clone()
    }

    fn write_value(&mut self, rng: &mut Rng, name: &str, out: &mut String) {
        match name {
            "user" => out.push_str(self.user),
            "domain" => out.push_str(self.domain),
            "hex8" => {
                out.push_str(self.hex8.get_or_insert_with(|| ids::hex(&rng.bytes::<4>(), false)))
            }
            // Windows process ids are multiples of four.
            "pid" => {
                let _ = write!(out, "{}", 4 * (100 + rng.below(16_000)));
            }
            "task" => out.push_str(rng.pick::<&str>(&catalog::TASK_NAMES)),
            "peer" => out.push_str(&rng.pick(self.peers).dns_name),
            "url" => out.push_str(&self.url(rng)),
            "ip" => out.push_str(&self.ip(rng)),
            "enc" => {
                let script = *rng.pick(&catalog::ENCODED_SCRIPTS);
                let script = self.expand(rng, script);
                out.push_str(&encode_powershell(&script));
            }
            other => {
                out.push('{');
                out.push_str(other);
                out.push('}');
            }
        }
    }
}

/// What `powershell -EncodedCommand` takes: the script in UTF-16LE, in base64.
fn encode_powershell(script: &str) -> String {
    let utf16: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    BASE64.encode(utf16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FleetOptions, fleet};

    fn templates() -> Vec<&'static str> {
        let behaviours = catalog::BEHAVIOURS.iter().map(|(b, _)| b);
        let mut all: Vec<&str> =
            behaviours.clone().flat_map(|b| b.commands.iter().copied()).collect();
        all.extend(behaviours.map(|b| b.folder));
        all.extend(catalog::THREAT_FOLDERS);
        all.extend(catalog::URL_PATHS);
        all.extend(catalog::ENCODED_SCRIPTS);
        all
    }

    #[test]
    fn every_placeholder_in_the_catalog_is_known() {
        let mut rng = Rng::new(1);
        let peers = fleet::generate(&mut rng, &FleetOptions::default());
        for template in templates() {
            let mut expander = Expander::new("jdoe", "contoso.com", &peers);
            let text = expander.expand(&mut rng, template);
            assert!(!text.contains(['{', '}']), "{template:?} became {text:?}");
        }
    }

    #[test]
    fn a_placeholder_keeps_its_value_within_an_indicator() {
        let mut rng = Rng::new(2);
        let mut expander = Expander::new("jdoe", "contoso.com", &[]);
        let text = expander.expand(&mut rng, "{hex8}.exe {hex8}.exe {url} {url} {user} {nope}");
        let words: Vec<&str> = text.split(' ').collect();
        assert_eq!(words[0], words[1]);
        assert_eq!(words[2], words[3]);
        assert!(words[2].contains(".example"), "{text}");
        assert_eq!(&words[4..], ["jdoe", "{nope}"]);
    }

    #[test]
    fn encoded_commands_are_utf16_base64() {
        let encoded = encode_powershell("IEX 'a'");
        let bytes = BASE64.decode(&encoded).unwrap();
        let units: Vec<u16> = bytes.chunks(2).map(|p| u16::from_le_bytes([p[0], p[1]])).collect();
        assert_eq!(String::from_utf16(&units).unwrap(), "IEX 'a'");
    }
}
