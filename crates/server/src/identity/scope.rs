//! What a sign-in asks for: the resource its tokens are for, the permissions
//! on it, and the OpenID Connect scopes (`openid`, `profile`, `email`,
//! `offline_access`) that decide whether an id token and a refresh token
//! come back.

use super::error::AadError;

/// The scopes of a delegated (signed-in user) request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    /// The audience of the access token.
    pub resource: String,
    /// Resource scopes as the client wrote them (`https://graph.windows.net/user_impersonation`).
    pub resource_scopes: Vec<String>,
    /// The OpenID Connect scopes asked for, in the order asked.
    pub oidc: Vec<&'static str>,
}

const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The permission names a delegated token carries in `scp` when a client
/// asks for the resource as a whole (`/.default`) or names nothing else.
const DEFAULT_PERMISSION: &str = "user_impersonation";

impl Requested {
    /// Parses a v2 `scope`. With no resource scope at all (only `openid`
    /// and the like), the token is for `default_resource`, as Azure AD
    /// falls back to its Graph.
    pub fn parse_v2(
        scope: &str,
        accepted: &[String],
        default_resource: &str,
    ) -> Result<Requested, AadError> {
        let mut oidc = Vec::new();
        let mut resource: Option<String> = None;
        let mut resource_scopes = Vec::new();
        for item in scope.split_whitespace() {
            if let Some(known) = OIDC_SCOPES.iter().find(|s| s.eq_ignore_ascii_case(item)) {
                if !oidc.contains(known) {
                    oidc.push(*known);
                }
                continue;
            }
            let (aud, _permission) = item
                .rsplit_once('/')
                .filter(|(aud, _)| aud.contains("://"))
                .ok_or_else(|| AadError::bad_resource(item, accepted))?;
            let aud =
                canonical(aud, accepted).ok_or_else(|| AadError::bad_resource(aud, accepted))?;
            match &resource {
                Some(r) if *r != aud => return Err(AadError::several_resources(scope)),
                _ => resource = Some(aud),
            }
            resource_scopes.push(item.to_owned());
        }
        let resource = resource.unwrap_or_else(|| default_resource.to_owned());
        Ok(Requested { resource, resource_scopes, oidc })
    }

    /// A v1 request: a `resource`, with OpenID Connect implied, as v1
    /// always answers with an id token and a refresh token.
    pub fn v1(resource: &str, accepted: &[String]) -> Result<Requested, AadError> {
        let aud = canonical(resource, accepted)
            .ok_or_else(|| AadError::bad_resource(resource, accepted))?;
        Ok(Requested {
            resource: aud,
            resource_scopes: Vec::new(),
            oidc: vec!["openid", "profile", "offline_access"],
        })
    }

    pub fn wants(&self, oidc: &str) -> bool {
        self.oidc.contains(&oidc)
    }

    /// The `scp` claim: the permissions named on the resource, `.default`
    /// standing for the resource's one delegated permission.
    pub fn permissions(&self) -> String {
        let mut names: Vec<&str> = self
            .resource_scopes
            .iter()
            .filter_map(|s| s.rsplit_once('/').map(|(_, p)| p))
            .filter(|p| *p != ".default" && !p.is_empty())
            .collect();
        names.dedup();
        if names.is_empty() { DEFAULT_PERMISSION.to_owned() } else { names.join(" ") }
    }

    /// The v2 response's `scope`: what was granted, as the client named it,
    /// so MSAL files the token under the scopes it asked for.
    pub fn granted_v2(&self) -> String {
        let mut granted: Vec<&str> = self.resource_scopes.iter().map(String::as_str).collect();
        if granted.is_empty() {
            // Nothing named on a resource: the default resource's permission.
            return self
                .oidc
                .iter()
                .copied()
                .filter(|s| *s != "offline_access")
                .collect::<Vec<_>>()
                .join(" ");
        }
        granted.extend(self.oidc.iter().copied().filter(|s| *s != "offline_access"));
        granted.join(" ")
    }

    /// The form the code and refresh token keep: resource scopes and OIDC scopes.
    pub fn to_scope_string(&self) -> String {
        let mut all: Vec<&str> = self.resource_scopes.iter().map(String::as_str).collect();
        all.extend(self.oidc.iter().copied());
        all.join(" ")
    }
}

/// The accepted audience `aud` names, written as configured; trailing
/// slashes and letter case of the host do not matter.
fn canonical(aud: &str, accepted: &[String]) -> Option<String> {
    let wanted = aud.trim_end_matches('/');
    accepted.iter().find(|a| a.trim_end_matches('/').eq_ignore_ascii_case(wanted)).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted() -> Vec<String> {
        vec!["https://graph.windows.net".into(), "https://api.example".into()]
    }

    #[test]
    fn msal_scopes_name_one_resource_and_the_oidc_extras() {
        let r = Requested::parse_v2(
            "https://graph.windows.net/user_impersonation offline_access openid profile",
            &accepted(),
            "https://graph.windows.net",
        )
        .unwrap();
        assert_eq!(r.resource, "https://graph.windows.net");
        assert_eq!(r.permissions(), "user_impersonation");
        assert!(r.wants("openid") && r.wants("offline_access") && !r.wants("email"));
        assert_eq!(r.granted_v2(), "https://graph.windows.net/user_impersonation openid profile");
        let again = Requested::parse_v2(&r.to_scope_string(), &accepted(), "x").unwrap();
        assert_eq!(again, r);
    }

    #[test]
    fn defaults_unknown_and_mixed_resources() {
        let r = Requested::parse_v2("openid", &accepted(), "https://graph.windows.net").unwrap();
        assert_eq!(
            (r.resource.as_str(), r.permissions().as_str()),
            ("https://graph.windows.net", "user_impersonation")
        );
        let r = Requested::parse_v2("https://api.example/.default", &accepted(), "x").unwrap();
        assert_eq!(r.permissions(), "user_impersonation");
        let unknown = Requested::parse_v2("https://evil.example/x", &accepted(), "x").unwrap_err();
        assert_eq!(unknown.code(), 500011);
        let bare = Requested::parse_v2("User.Read", &accepted(), "x").unwrap_err();
        assert_eq!(bare.code(), 500011);
        let mixed = Requested::parse_v2(
            "https://api.example/a https://graph.windows.net/b",
            &accepted(),
            "x",
        )
        .unwrap_err();
        assert_eq!(mixed.code(), 28000);
        assert_eq!(
            Requested::v1("https://GRAPH.windows.net/", &accepted()).unwrap().resource,
            "https://graph.windows.net"
        );
    }
}
