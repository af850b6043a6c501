//! The identity provider: enough of Azure AD's v1 and v2 endpoints that
//! ADAL, MSAL and azure-identity get tokens from siemgate unmodified.

mod authorize;
mod delegated;
mod discovery;
pub mod error;
mod scope;
mod token;

use axum::Router;
use axum::routing::{get, post};
use siemgate_store::{Tenant, TenantState};

use crate::AppState;
pub(crate) use authorize::authenticate_user;
use error::AadError;

/// Which generation of Azure AD's endpoints a request came to. v1 names the
/// audience with `resource` and writes numbers as strings; v2 asks for
/// `<resource>/...` scopes and writes numbers as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// The identity routes; `{tenant}` is a tenant's GUID or one of its domains.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/{tenant}/oauth2/token", post(token::v1))
        .route("/{tenant}/oauth2/v2.0/token", post(token::v2))
        .route("/{tenant}/oauth2/authorize", get(authorize::page_v1).post(authorize::sign_in_v1))
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(authorize::page_v2).post(authorize::sign_in_v2),
        )
        .route("/{tenant}/.well-known/openid-configuration", get(discovery::v1))
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(discovery::v2))
        .route("/{tenant}/discovery/keys", get(discovery::keys))
        .route("/{tenant}/discovery/v2.0/keys", get(discovery::keys))
        .route("/common/discovery/instance", get(discovery::instance))
}

/// The tenant a path names, if it exists and may obtain tokens.
async fn resolve_tenant(state: &AppState, key: &str) -> Result<Tenant, AadError> {
    let tenant = state.store().find_tenant(key).await.map_err(|e| {
        tracing::error!(error = %e, "looking up a tenant failed");
        AadError::internal()
    })?;
    let tenant = tenant.ok_or_else(|| AadError::unknown_tenant(key))?;
    match tenant.state {
        TenantState::Active => Ok(tenant),
        TenantState::Deleted => Err(AadError::unknown_tenant(key)),
        TenantState::Disabled => Err(AadError::tenant_disabled(key, tenant.state.as_str())),
    }
}
