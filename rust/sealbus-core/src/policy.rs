//! Default-deny publish/subscribe permissions.
//!
//! Rules are type globs (`orders.placed`, `orders.*`, `*`) granted per principal name.
//! Nothing is allowed until a rule allows it. A subscription that names a glob is
//! allowed only if that glob is *contained* in one granted glob, so a consumer cannot
//! widen its access with a pattern. Principals are registered once and get an
//! unforgeable 32-byte token; every call that acts as a principal presents the token,
//! which is compared in constant time.

use std::collections::HashMap;
use std::sync::RwLock;

use subtle::ConstantTimeEq;

use crate::error::{Action, Error, Result};

/// Does `glob` (with `*` matching any run of characters, including none) match `text`?
/// Iterative with one backtrack point: linear in practice, no recursion.
pub fn glob_match(glob: &str, text: &str) -> bool {
    let (g, t) = (glob.as_bytes(), text.as_bytes());
    let (mut gi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if gi < g.len() && g[gi] == b'*' {
            star = Some((gi, ti));
            gi += 1;
        } else if gi < g.len() && g[gi] == t[ti] {
            gi += 1;
            ti += 1;
        } else if let Some((sg, st)) = star {
            gi = sg + 1;
            ti = st + 1;
            star = Some((sg, st + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|&c| c == b'*')
}

/// Is every type matched by `inner` also matched by `outer`? Sound: `outer` matching
/// `inner` read literally means each `*` of `inner` is absorbed by a `*` of `outer`
/// (type names never contain a literal `*`), so any expansion of it still matches.
pub fn glob_contains(outer: &str, inner: &str) -> bool {
    glob_match(outer, inner)
}

/// Event-type globs: type characters plus `*`.
pub fn check_glob(glob: &str) -> Result<()> {
    if glob.is_empty()
        || glob.len() > 255
        || !glob
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'*'))
    {
        return Err(Error::InvalidArgument {
            name: "type pattern".into(),
            reason: format!("{glob:?} is not an event type or a '*' glob of one"),
        });
    }
    Ok(())
}

#[derive(Default, Debug, Clone)]
struct Grants {
    publish: Vec<String>,
    subscribe: Vec<String>,
}

/// The principals and their grants. Shared by reference; interior locking.
#[derive(Default)]
pub struct Policy {
    grants: RwLock<HashMap<String, Grants>>,
    tokens: RwLock<HashMap<String, [u8; 32]>>,
    /// X25519 public keys of principals that receive end-to-end sealed events.
    public_keys: RwLock<HashMap<String, [u8; 32]>>,
    /// Type globs whose events must be sealed end to end by their producer.
    end_to_end: RwLock<Vec<String>>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens are credentials: never printed.
        f.debug_struct("Policy").finish_non_exhaustive()
    }
}

fn poisoned() -> Error {
    Error::Closed {
        what: "policy (a thread panicked while holding its lock)".into(),
    }
}

impl Policy {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a principal name; returns its token. A name is registered once.
    pub fn register(&self, name: &str) -> Result<[u8; 32]> {
        if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
            return Err(Error::InvalidArgument {
                name: "principal".into(),
                reason: "a principal name is 1..=255 printable characters".into(),
            });
        }
        let mut tokens = self.tokens.write().map_err(|_| poisoned())?;
        if tokens.contains_key(name) {
            return Err(Error::InvalidArgument {
                name: "principal".into(),
                reason: format!("principal {name:?} is already registered"),
            });
        }
        let mut token = [0u8; 32];
        getrandom::fill(&mut token).map_err(|e| Error::Seal {
            reason: format!("no randomness for a principal token: {e}"),
        })?;
        tokens.insert(name.to_owned(), token);
        Ok(token)
    }

    /// Check that `token` is the one issued to `name` (constant time).
    pub fn authenticate(&self, name: &str, token: &[u8]) -> Result<()> {
        let tokens = self.tokens.read().map_err(|_| poisoned())?;
        let ok = tokens
            .get(name)
            .is_some_and(|t| bool::from(t.as_slice().ct_eq(token)));
        if ok {
            Ok(())
        } else {
            Err(Error::PolicyDenied {
                principal: name.to_owned(),
                action: Action::Publish,
                event_type: "(unauthenticated principal)".into(),
            })
        }
    }

    pub fn allow(&self, principal: &str, action: Action, glob: &str) -> Result<()> {
        check_glob(glob)?;
        let mut g = self.grants.write().map_err(|_| poisoned())?;
        let entry = g.entry(principal.to_owned()).or_default();
        let list = match action {
            Action::Publish => &mut entry.publish,
            Action::Subscribe => &mut entry.subscribe,
        };
        if !list.iter().any(|x| x == glob) {
            list.push(glob.to_owned());
        }
        Ok(())
    }

    /// Remove a grant; returns whether it existed.
    pub fn revoke(&self, principal: &str, action: Action, glob: &str) -> Result<bool> {
        let mut g = self.grants.write().map_err(|_| poisoned())?;
        let Some(entry) = g.get_mut(principal) else {
            return Ok(false);
        };
        let list = match action {
            Action::Publish => &mut entry.publish,
            Action::Subscribe => &mut entry.subscribe,
        };
        let before = list.len();
        list.retain(|x| x != glob);
        Ok(list.len() != before)
    }

    /// May `principal` perform `action` on every type matched by `type_or_glob`?
    pub fn allows(&self, principal: &str, action: Action, type_or_glob: &str) -> bool {
        let Ok(g) = self.grants.read() else {
            return false;
        };
        g.get(principal).is_some_and(|e| {
            let list = match action {
                Action::Publish => &e.publish,
                Action::Subscribe => &e.subscribe,
            };
            list.iter()
                .any(|granted| glob_contains(granted, type_or_glob))
        })
    }

    pub fn check(&self, principal: &str, action: Action, type_or_glob: &str) -> Result<()> {
        if self.allows(principal, action, type_or_glob) {
            Ok(())
        } else {
            Err(Error::PolicyDenied {
                principal: principal.to_owned(),
                action,
                event_type: type_or_glob.to_owned(),
            })
        }
    }

    /// Set (or replace) the X25519 public key a principal receives wrapped data keys for.
    pub fn set_public_key(&self, principal: &str, key: &[u8]) -> Result<()> {
        let key: [u8; 32] = key.try_into().map_err(|_| Error::InvalidArgument {
            name: "public_key".into(),
            reason: format!("an X25519 public key is 32 bytes, not {}", key.len()),
        })?;
        self.public_keys
            .write()
            .map_err(|_| poisoned())?
            .insert(principal.to_owned(), key);
        Ok(())
    }

    /// Require events of types matching `glob` to be sealed end to end.
    pub fn require_end_to_end(&self, glob: &str) -> Result<()> {
        check_glob(glob)?;
        let mut e = self.end_to_end.write().map_err(|_| poisoned())?;
        if !e.iter().any(|g| g == glob) {
            e.push(glob.to_owned());
        }
        Ok(())
    }

    /// Must events of this concrete type be sealed end to end?
    pub fn requires_end_to_end(&self, event_type: &str) -> bool {
        self.end_to_end
            .read()
            .is_ok_and(|e| e.iter().any(|g| glob_match(g, event_type)))
    }

    /// Might some type matched by `glob` be end-to-end? (Conservative: either glob
    /// matching the other read literally counts as an overlap.)
    pub fn may_be_end_to_end(&self, glob: &str) -> bool {
        self.end_to_end
            .read()
            .is_ok_and(|e| e.iter().any(|g| glob_match(g, glob) || glob_match(glob, g)))
    }

    /// The recipients of an end-to-end event of this type: every principal allowed
    /// to read it that has a public key, sorted by name.
    pub fn recipients(&self, event_type: &str) -> Vec<(String, [u8; 32])> {
        let Ok(keys) = self.public_keys.read() else {
            return Vec::new();
        };
        let mut out: Vec<(String, [u8; 32])> = keys
            .iter()
            .filter(|(name, _)| self.allows(name, Action::Subscribe, event_type))
            .map(|(n, k)| (n.clone(), *k))
            .collect();
        out.sort();
        out
    }

    /// The grants of one principal: (publish globs, subscribe globs).
    pub fn grants(&self, principal: &str) -> (Vec<String>, Vec<String>) {
        self.grants
            .read()
            .ok()
            .and_then(|g| {
                g.get(principal)
                    .map(|e| (e.publish.clone(), e.subscribe.clone()))
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", "orders.placed"));
        assert!(glob_match("orders.*", "orders.placed"));
        assert!(!glob_match("orders.*", "ordersX"));
        assert!(glob_match("*.placed", "orders.placed"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("orders.placed", "orders.placed"));
        assert!(!glob_match("orders.placed", "orders.placed2"));
    }

    #[test]
    fn containment_refuses_widening() {
        assert!(glob_contains("orders.*", "orders.placed"));
        assert!(glob_contains("orders.*", "orders.*"));
        assert!(glob_contains("orders.*", "orders.eu.*"));
        assert!(!glob_contains("orders.*", "*"));
        assert!(!glob_contains("orders.placed", "orders.*"));
        assert!(!glob_contains("*.placed", "orders.*"));
        assert!(glob_contains("*", "*"));
    }

    #[test]
    fn default_deny_and_grants() {
        let p = Policy::new();
        assert!(p
            .check("checkout", Action::Publish, "orders.placed")
            .is_err());
        p.allow("checkout", Action::Publish, "orders.*").unwrap();
        assert!(p
            .check("checkout", Action::Publish, "orders.placed")
            .is_ok());
        assert!(p
            .check("checkout", Action::Subscribe, "orders.placed")
            .is_err());
        assert!(p.check("other", Action::Publish, "orders.placed").is_err());
        assert!(p.revoke("checkout", Action::Publish, "orders.*").unwrap());
        assert!(p
            .check("checkout", Action::Publish, "orders.placed")
            .is_err());
        assert!(p.allow("x", Action::Publish, "bad glob").is_err());
    }

    #[test]
    fn end_to_end_recipients() {
        let p = Policy::new();
        p.require_end_to_end("payments.*").unwrap();
        assert!(p.requires_end_to_end("payments.captured"));
        assert!(!p.requires_end_to_end("orders.placed"));
        assert!(p.may_be_end_to_end("*"));
        assert!(p.may_be_end_to_end("payments.captured"));
        assert!(!p.may_be_end_to_end("orders.*"));
        p.allow("billing", Action::Subscribe, "payments.*").unwrap();
        p.allow("analytics", Action::Subscribe, "orders.*").unwrap();
        p.set_public_key("billing", &[1; 32]).unwrap();
        p.set_public_key("analytics", &[2; 32]).unwrap();
        assert!(p.set_public_key("x", &[0; 31]).is_err());
        let r = p.recipients("payments.captured");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, "billing");
    }

    #[test]
    fn tokens() {
        let p = Policy::new();
        let t = p.register("checkout").unwrap();
        assert!(p.register("checkout").is_err());
        assert!(p.authenticate("checkout", &t).is_ok());
        let mut forged = t;
        forged[0] ^= 1;
        assert!(p.authenticate("checkout", &forged).is_err());
        assert!(p.authenticate("nobody", &t).is_err());
        // A prefix of the token, or none at all, is not the token.
        for short in [&t[..0], &t[..1], &t[..16], &t[..31]] {
            assert!(
                p.authenticate("checkout", short).is_err(),
                "{} bytes",
                short.len()
            );
        }
        let mut long = t.to_vec();
        long.push(0);
        assert!(p.authenticate("checkout", &long).is_err());
        assert!(
            !format!("{p:?}").contains(&format!("{}", t[0])) || format!("{p:?}") == "Policy { .. }"
        );
    }
}
