//! The token benchmark: what checking a bearer token costs the SIEM API, the
//! first time a token is seen (signature and claims) and every time after
//! (from the verifier's memory), beside the bare RS256 signature check of the
//! same tokens.

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Args;
use siemgate_identity::token::v1_issuer;
use siemgate_identity::{Claims, SigningKey, Verifier, issue};
use siemgate_model::Timestamp;

use crate::report::{Report, median};

#[derive(Debug, Args)]
pub struct TokensBench {
    /// Distinct tokens, each verified once in full.
    #[arg(long, default_value_t = 2_000)]
    tokens: usize,
    /// Presentations of already verified tokens.
    #[arg(long, default_value_t = 200_000)]
    repeats: usize,
    /// Rounds; the median of each figure is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

const GRAPH: &str = "https://graph.windows.net";
const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

pub fn run(args: TokensBench) -> anyhow::Result<bool> {
    anyhow::ensure!(args.tokens > 0 && args.repeats > 0 && args.rounds > 0, "counts must be > 0");
    let now = Timestamp::from_system_time(std::time::SystemTime::now());
    let key = SigningKey::generate(now)?;
    let tokens: Vec<String> =
        (0..args.tokens).map(|i| issue(&key, &claims(now, i))).collect::<Result<_, _>>()?;
    // The baseline's inputs, split and decoded beforehand: it pays for the
    // signature and nothing else.
    let signed: Vec<(&[u8], Vec<u8>)> = tokens
        .iter()
        .map(|t| {
            let (message, signature) = t.rsplit_once('.').unwrap_or((t, ""));
            (message.as_bytes(), URL_SAFE_NO_PAD.decode(signature).unwrap_or_default())
        })
        .collect();

    let (mut full, mut bare, mut remembered) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.rounds {
        let verifier =
            Verifier::new([key.verifying_key().clone()], vec![GRAPH.into()], "https://gate", 60);
        // The two sides take turns going first, so neither always meets a
        // cold cache.
        for side in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            if side == 0 {
                let started = Instant::now();
                for token in &tokens {
                    verifier.verify(token, now)?;
                }
                full.push(tokens.len() as f64 / started.elapsed().as_secs_f64());
            } else {
                let started = Instant::now();
                for (message, signature) in &signed {
                    anyhow::ensure!(
                        key.verifying_key().verify(message, signature),
                        "baseline failed"
                    );
                }
                bare.push(signed.len() as f64 / started.elapsed().as_secs_f64());
            }
        }

        let started = Instant::now();
        for i in 0..args.repeats {
            verifier.verify(&tokens[i % tokens.len()], now)?;
        }
        remembered.push(args.repeats as f64 / started.elapsed().as_secs_f64());
    }

    let mut report = Report::new();
    report.note(&format!(
        "tokens: {} distinct RS256 tokens, {} repeat presentations, median of {} rounds",
        args.tokens, args.repeats, args.rounds
    ));
    let (full, bare, remembered) = (median(full), median(bare), median(remembered));
    report.ratio("first presentation (full check), tokens/s", full, bare, 0.7);
    report.ratio("repeat presentation (remembered), tokens/s", remembered, bare, 10.0);
    Ok(report.all_passed)
}

/// A token's claims, made distinct by `i`.
fn claims(now: Timestamp, i: usize) -> Claims {
    let iat = now.unix_seconds();
    let oid = format!("00000000-0000-0000-0000-{i:012}");
    Claims {
        aud: GRAPH.into(),
        iss: v1_issuer(TID),
        iat,
        nbf: iat - 300,
        exp: iat + 3599,
        tid: TID.into(),
        appid: Some(oid.clone()),
        azp: None,
        oid: oid.clone(),
        sub: oid,
        roles: vec!["siem-read".into()],
        scp: None,
        name: None,
        upn: None,
        preferred_username: None,
        ver: "1.0".into(),
    }
}
