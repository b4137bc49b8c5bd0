//! Whether a stored SCRAM-SHA-256 verifier (`SCRAM-SHA-256$ITER:SALT$STOREDKEY:SERVERKEY`, as
//! `pg_authid.rolpassword` holds it) belongs to a password (RFC 5802/7677): the password is
//! salted and hashed as a client proving it would be, and the stored key compared. Nothing is
//! sent anywhere.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Option<[u8; 32]> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(data);
    Some(mac.finalize().into_bytes().into())
}

/// PBKDF2-HMAC-SHA-256 of one block: the salted password.
fn salted(password: &[u8], salt: &[u8], iterations: u32) -> Option<[u8; 32]> {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(password, &first)?;
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password, &u)?;
        for (o, x) in out.iter_mut().zip(u.iter()) {
            *o ^= x;
        }
    }
    Some(out)
}

/// Whether `verifier` was made from `password`. A verifier in another form (MD5, none) never
/// matches: the password is set again as SCRAM.
pub fn verify(verifier: &str, password: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let Some(rest) = verifier.strip_prefix("SCRAM-SHA-256$") else { return false };
    let Some((params, keys)) = rest.split_once('$') else { return false };
    let Some((iterations, salt)) = params.split_once(':') else { return false };
    let Some((stored, _server)) = keys.split_once(':') else { return false };
    let (Ok(iterations), Ok(salt), Ok(stored)) =
        (iterations.parse::<u32>(), b64.decode(salt), b64.decode(stored))
    else {
        return false;
    };
    if iterations == 0 || iterations > 10_000_000 {
        return false;
    }
    // PostgreSQL applies SASLprep to the password; an ASCII password is unchanged by it.
    let Some(salted) = salted(password.as_bytes(), &salt, iterations) else { return false };
    let Some(client_key) = hmac(&salted, b"Client Key") else { return false };
    Sha256::digest(client_key).as_slice() == stored.as_slice()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_verifier_matches_its_own_password_only() {
        let v = postgres_protocol::password::scram_sha_256(b"correct horse");
        assert!(super::verify(&v, "correct horse"));
        assert!(!super::verify(&v, "correct hors"));
        assert!(!super::verify("md5abcdef", "correct horse"));
        assert!(!super::verify("SCRAM-SHA-256$x", "correct horse"));
    }
}
