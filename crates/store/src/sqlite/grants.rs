//! Authorization codes and refresh tokens in SQLite. Both are kept only as
//! hashes, and both hang off their app and user, so removing either revokes
//! them.

use rusqlite::{Connection, OptionalExtension, params};
use siemgate_model::Timestamp;
use uuid::Uuid;

use super::principals::{app_key, user_key};
use crate::{AuthCode, CodeRedemption, RefreshGrant, Sealed, StoreError};

fn uuid(text: String) -> Result<Uuid, StoreError> {
    Uuid::parse_str(&text).map_err(|e| StoreError::Worker(format!("bad id {text} in store: {e}")))
}

pub(super) fn save_code(conn: &Connection, code: &AuthCode) -> Result<(), StoreError> {
    // Codes live minutes; whatever expired before this one was issued goes.
    conn.execute("DELETE FROM auth_codes WHERE expires_ticks < ?1", [code.issued.unix_ticks()])?;
    conn.execute(
        "INSERT INTO auth_codes (code_hash, app_key, user_key, redirect_uri, scope, resource,
             nonce, code_challenge, challenge_method, issued_ticks, expires_ticks)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            code.hash.0,
            app_key(conn, code.client_id)?,
            user_key(conn, code.user)?,
            code.redirect_uri,
            code.scope,
            code.resource,
            code.nonce,
            code.code_challenge,
            code.challenge_method,
            code.issued.unix_ticks(),
            code.expires.unix_ticks(),
        ],
    )?;
    Ok(())
}

pub(super) fn redeem_code(conn: &Connection, hash: &[u8]) -> Result<CodeRedemption, StoreError> {
    let row = conn
        .query_row(
            "SELECT a.client_id, u.user_id, c.redirect_uri, c.scope, c.resource, c.nonce,
                    c.code_challenge, c.challenge_method, c.issued_ticks, c.expires_ticks,
                    c.redeemed, c.app_key, c.user_key
             FROM auth_codes c
             JOIN apps a ON a.app_key = c.app_key
             JOIN users u ON u.user_key = c.user_key
             WHERE c.code_hash = ?1",
            [hash],
            |r| {
                Ok((
                    (r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?),
                    (r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?),
                    (r.get(8)?, r.get(9)?, r.get::<_, bool>(10)?, r.get::<_, i64>(11)?),
                    r.get::<_, i64>(12)?,
                ))
            },
        )
        .optional()?;
    let Some((
        (client_id, user, redirect_uri, scope),
        (resource, nonce, code_challenge, challenge_method),
        (issued, expires, redeemed, app),
        user_key,
    )) = row
    else {
        return Ok(CodeRedemption::Unknown);
    };
    if redeemed {
        conn.execute(
            "DELETE FROM refresh_tokens WHERE app_key = ?1 AND user_key = ?2",
            [app, user_key],
        )?;
        return Ok(CodeRedemption::Reused);
    }
    conn.execute("UPDATE auth_codes SET redeemed = 1 WHERE code_hash = ?1", [hash])?;
    Ok(CodeRedemption::Fresh(Box::new(AuthCode {
        hash: Sealed(hash.to_vec()),
        client_id: uuid(client_id)?,
        user: uuid(user)?,
        redirect_uri,
        scope,
        resource,
        nonce,
        code_challenge,
        challenge_method,
        issued: Timestamp::from_unix_ticks(issued),
        expires: Timestamp::from_unix_ticks(expires),
    })))
}

pub(super) fn save_refresh(conn: &Connection, grant: &RefreshGrant) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM refresh_tokens WHERE expires_ticks < ?1",
        [grant.issued.unix_ticks()],
    )?;
    insert_refresh(conn, grant)
}

/// Writes the refresh token's row, as issued or as copied from another store.
pub(super) fn insert_refresh(conn: &Connection, grant: &RefreshGrant) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO refresh_tokens (token_hash, app_key, user_key, scope, resource,
             issued_ticks, expires_ticks)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            grant.hash.0,
            app_key(conn, grant.client_id)?,
            user_key(conn, grant.user)?,
            grant.scope,
            grant.resource,
            grant.issued.unix_ticks(),
            grant.expires.unix_ticks(),
        ],
    )?;
    Ok(())
}

pub(super) fn take_refresh(
    conn: &Connection,
    hash: &[u8],
) -> Result<Option<RefreshGrant>, StoreError> {
    let row = conn
        .query_row(
            "SELECT a.client_id, u.user_id, r.scope, r.resource, r.issued_ticks, r.expires_ticks
             FROM refresh_tokens r
             JOIN apps a ON a.app_key = r.app_key
             JOIN users u ON u.user_key = r.user_key
             WHERE r.token_hash = ?1",
            [hash],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .optional()?;
    let Some((client_id, user, scope, resource, issued, expires)) = row else {
        return Ok(None);
    };
    conn.execute("DELETE FROM refresh_tokens WHERE token_hash = ?1", [hash])?;
    Ok(Some(RefreshGrant {
        hash: Sealed(hash.to_vec()),
        client_id: uuid(client_id)?,
        user: uuid(user)?,
        scope,
        resource,
        issued: Timestamp::from_unix_ticks(issued),
        expires: Timestamp::from_unix_ticks(expires),
    }))
}
