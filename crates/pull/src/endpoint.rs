//! Where the puller connects: Microsoft's hosts for a region, or any server
//! that speaks the same API (siemgate itself), and how it asks for tokens.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The resource the SIEM API's tokens are issued for.
pub const DEFAULT_RESOURCE: &str = "https://graph.windows.net";

/// Microsoft's clouds, each with its own exporter and sign-in host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    Eu,
    Us,
    Uk,
    /// US Government Community Cloud: its own exporter, the public sign-in host.
    UsGovGcc,
    /// GCC High and DoD: a government exporter and sign-in host.
    UsGov,
}

impl Region {
    pub const NAMES: [&str; 5] = ["eu", "us", "uk", "us-gov-gcc", "us-gov"];

    /// The origin of the region's SIEM API.
    pub fn api_origin(self) -> &'static str {
        match self {
            Region::Eu => "https://wdatp-alertexporter-eu.windows.com",
            Region::Us => "https://wdatp-alertexporter-us.windows.com",
            Region::Uk => "https://wdatp-alertexporter-uk.windows.com",
            Region::UsGovGcc => "https://wdatp-alertexporter-us.gcc.securitycenter.windows.us",
            Region::UsGov => "https://wdatp-alertexporter-us.securitycenter.windows.us",
        }
    }

    /// The origin of the region's Azure AD.
    pub fn login_origin(self) -> &'static str {
        match self {
            Region::UsGov => "https://login.microsoftonline.us",
            _ => "https://login.microsoftonline.com",
        }
    }
}

impl FromStr for Region {
    type Err = String;

    fn from_str(s: &str) -> Result<Region, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "eu" => Region::Eu,
            "us" => Region::Us,
            "uk" => Region::Uk,
            "us-gov-gcc" | "gcc" => Region::UsGovGcc,
            "us-gov" | "gcc-high" | "dod" => Region::UsGov,
            _ => {
                return Err(format!(
                    "unknown region {s:?}; the regions are {}",
                    Region::NAMES.join(", ")
                ));
            }
        })
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = *self as usize;
        f.write_str(Region::NAMES[i])
    }
}

/// Which Azure AD token endpoint to call: v1 takes `resource`, v2 a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenVersion {
    #[default]
    V1,
    V2,
}

/// Everything needed to reach one tenant's detections.
#[derive(Clone)]
pub struct Endpoint {
    /// The tenant's GUID or domain, as Azure AD takes it in the token URL.
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
    /// The full URL of `GET /api/alerts`.
    pub alerts_url: String,
    /// The full URL of the token endpoint.
    pub token_url: String,
    pub resource: String,
    pub token_version: TokenVersion,
    /// PEM certificates to trust besides the system's roots.
    pub ca_file: Option<PathBuf>,
    /// An HTTP(S) proxy for every request.
    pub proxy: Option<String>,
    /// Ask for gzip answers: far fewer bytes over a WAN, some CPU at both ends.
    pub gzip: bool,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<hidden>")
            .field("alerts_url", &self.alerts_url)
            .field("token_url", &self.token_url)
            .field("resource", &self.resource)
            .field("token_version", &self.token_version)
            .finish_non_exhaustive()
    }
}

/// Where the API and the token endpoint are, before the tenant is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hosts {
    Region(Region),
    /// A server's origin (`https://gate.example:8443`) and, optionally, a
    /// token URL elsewhere; by default the server's own identity provider.
    Custom {
        url: String,
        token_url: Option<String>,
    },
}

impl Hosts {
    /// The alerts URL and token URL for `tenant`.
    pub fn urls(&self, tenant: &str, version: TokenVersion) -> (String, String) {
        let path = match version {
            TokenVersion::V1 => "oauth2/token",
            TokenVersion::V2 => "oauth2/v2.0/token",
        };
        match self {
            Hosts::Region(region) => (
                format!("{}/api/alerts", region.api_origin()),
                format!("{}/{tenant}/{path}", region.login_origin()),
            ),
            Hosts::Custom { url, token_url } => {
                let url = url.trim_end_matches('/');
                let alerts = if url.ends_with("/api/alerts") {
                    url.to_string()
                } else {
                    format!("{url}/api/alerts")
                };
                let origin = alerts.trim_end_matches("/api/alerts");
                let token =
                    token_url.clone().unwrap_or_else(|| format!("{origin}/{tenant}/{path}"));
                (alerts, token)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_map_to_microsofts_hosts() {
        let (api, token) = Hosts::Region(Region::Eu).urls("contoso.com", TokenVersion::V1);
        assert_eq!(api, "https://wdatp-alertexporter-eu.windows.com/api/alerts");
        assert_eq!(token, "https://login.microsoftonline.com/contoso.com/oauth2/token");
        let (api, token) = Hosts::Region(Region::UsGov).urls("t", TokenVersion::V2);
        assert_eq!(api, "https://wdatp-alertexporter-us.securitycenter.windows.us/api/alerts");
        assert_eq!(token, "https://login.microsoftonline.us/t/oauth2/v2.0/token");
        for name in Region::NAMES {
            assert_eq!(name.parse::<Region>().unwrap().to_string(), name);
        }
        assert!("mars".parse::<Region>().unwrap_err().contains("us-gov-gcc"));
    }

    #[test]
    fn a_custom_server_is_its_own_identity_provider() {
        let hosts = Hosts::Custom { url: "https://gate:8443/".into(), token_url: None };
        let (api, token) = hosts.urls("t1", TokenVersion::V1);
        assert_eq!(api, "https://gate:8443/api/alerts");
        assert_eq!(token, "https://gate:8443/t1/oauth2/token");
        let hosts = Hosts::Custom {
            url: "https://gate/api/alerts".into(),
            token_url: Some("https://l/x".into()),
        };
        assert_eq!(
            hosts.urls("t", TokenVersion::V1),
            ("https://gate/api/alerts".into(), "https://l/x".into())
        );
    }
}
