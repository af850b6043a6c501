//! Authorization codes and refresh tokens in PostgreSQL. Both are kept only
//! as hashes, and both hang off their app and user, so removing either
//! revokes them. Spending a code or a token is one locked or deleting
//! statement, so two replicas can never both accept the same one.

use deadpool_postgres::{GenericClient, Transaction};
use siemgate_model::Timestamp;

use super::principals::{app_key, user_key};
use crate::{AuthCode, CodeRedemption, RefreshGrant, Sealed, StoreError};

pub(super) async fn save_code(tx: &Transaction<'_>, code: &AuthCode) -> Result<(), StoreError> {
    // Codes live minutes; whatever expired before this one was issued goes.
    tx.execute("DELETE FROM auth_codes WHERE expires_ticks < $1", &[&code.issued.unix_ticks()])
        .await?;
    let app = app_key(tx, code.client_id).await?;
    let user = user_key(tx, code.user).await?;
    tx.execute(
        "INSERT INTO auth_codes (code_hash, app_key, user_key, redirect_uri, scope, resource,
             nonce, code_challenge, challenge_method, issued_ticks, expires_ticks)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &code.hash.0,
            &app,
            &user,
            &code.redirect_uri,
            &code.scope,
            &code.resource,
            &code.nonce,
            &code.code_challenge,
            &code.challenge_method,
            &code.issued.unix_ticks(),
            &code.expires.unix_ticks(),
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn redeem_code(
    tx: &Transaction<'_>,
    hash: &[u8],
) -> Result<CodeRedemption, StoreError> {
    // FOR UPDATE: a second replica redeeming the same code waits here and
    // then sees it spent.
    let row = tx
        .query_opt(
            "SELECT a.client_id, u.user_id, c.redirect_uri, c.scope, c.resource, c.nonce,
                    c.code_challenge, c.challenge_method, c.issued_ticks, c.expires_ticks,
                    c.redeemed, c.app_key, c.user_key
             FROM auth_codes c
             JOIN apps a ON a.app_key = c.app_key
             JOIN users u ON u.user_key = c.user_key
             WHERE c.code_hash = $1
             FOR UPDATE OF c",
            &[&hash],
        )
        .await?;
    let Some(row) = row else {
        return Ok(CodeRedemption::Unknown);
    };
    if row.get::<_, bool>(10) {
        let (app, user): (i64, i64) = (row.get(11), row.get(12));
        tx.execute(
            "DELETE FROM refresh_tokens WHERE app_key = $1 AND user_key = $2",
            &[&app, &user],
        )
        .await?;
        return Ok(CodeRedemption::Reused);
    }
    tx.execute("UPDATE auth_codes SET redeemed = true WHERE code_hash = $1", &[&hash]).await?;
    Ok(CodeRedemption::Fresh(Box::new(AuthCode {
        hash: Sealed(hash.to_vec()),
        client_id: row.get(0),
        user: row.get(1),
        redirect_uri: row.get(2),
        scope: row.get(3),
        resource: row.get(4),
        nonce: row.get(5),
        code_challenge: row.get(6),
        challenge_method: row.get(7),
        issued: Timestamp::from_unix_ticks(row.get(8)),
        expires: Timestamp::from_unix_ticks(row.get(9)),
    })))
}

pub(super) async fn save_refresh(
    tx: &Transaction<'_>,
    grant: &RefreshGrant,
) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM refresh_tokens WHERE expires_ticks < $1",
        &[&grant.issued.unix_ticks()],
    )
    .await?;
    insert_refresh(tx, grant).await
}

/// Writes the refresh token's row, as issued or as copied from another store.
pub(super) async fn insert_refresh(
    tx: &Transaction<'_>,
    grant: &RefreshGrant,
) -> Result<(), StoreError> {
    let app = app_key(tx, grant.client_id).await?;
    let user = user_key(tx, grant.user).await?;
    tx.execute(
        "INSERT INTO refresh_tokens (token_hash, app_key, user_key, scope, resource,
             issued_ticks, expires_ticks)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &grant.hash.0,
            &app,
            &user,
            &grant.scope,
            &grant.resource,
            &grant.issued.unix_ticks(),
            &grant.expires.unix_ticks(),
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn take_refresh<C: GenericClient>(
    client: &C,
    hash: &[u8],
) -> Result<Option<RefreshGrant>, StoreError> {
    // One statement finds and deletes: of two concurrent takers, one gets it.
    let row = client
        .query_opt(
            "WITH taken AS (DELETE FROM refresh_tokens WHERE token_hash = $1 RETURNING *)
             SELECT a.client_id, u.user_id, t.scope, t.resource, t.issued_ticks, t.expires_ticks
             FROM taken t
             JOIN apps a ON a.app_key = t.app_key
             JOIN users u ON u.user_key = t.user_key",
            &[&hash],
        )
        .await?;
    Ok(row.map(|r| refresh_grant(hash.to_vec(), &r, 0)))
}

/// A refresh token from a row holding client id, user id, scope, resource,
/// issued and expiry ticks, in that order from column `at`.
pub(super) fn refresh_grant(hash: Vec<u8>, r: &tokio_postgres::Row, at: usize) -> RefreshGrant {
    RefreshGrant {
        hash: Sealed(hash),
        client_id: r.get(at),
        user: r.get(at + 1),
        scope: r.get(at + 2),
        resource: r.get(at + 3),
        issued: Timestamp::from_unix_ticks(r.get(at + 4)),
        expires: Timestamp::from_unix_ticks(r.get(at + 5)),
    }
}
