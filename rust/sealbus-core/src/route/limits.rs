//! How large an event and a publish may be. Checked on the sizes alone (a batch's
//! offsets), before the router copies, validates, seals or stores anything: one
//! oversized event costs its producer a refusal, not the router its memory.

use crate::error::{Error, Result};

/// NATS's default `max_payload`; EventBridge allows 256 KB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;
/// 64 default-limit events, or ~100k typical (~600-byte) ones: far above a publish
/// that groups events for speed (the benches use 1,024), far below what would strain
/// the router's memory or hold the log writer for long.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 64 << 20;
/// What an end-to-end frame may add to its plaintext before the router can look
/// inside: header, nonce, tag and a wrapped data key per recipient (~100-350 bytes
/// each). The plaintext itself is held to `max_event_bytes` exactly once the frame is
/// decoded.
pub const END_TO_END_ALLOWANCE: usize = 256 << 10;

/// The size limits of a router's publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest data of one event, in bytes.
    pub max_event_bytes: usize,
    /// Largest sum of the data of one publish call, in bytes.
    pub max_batch_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
        }
    }
}

fn too_large(limit_name: &'static str, size: usize, limit: usize, index: Option<usize>) -> Error {
    Error::TooLarge {
        limit_name,
        size: size as u64,
        limit: limit as u64,
        index,
    }
}

impl Limits {
    /// Refuse limits that could never admit an event.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("max_event_bytes", self.max_event_bytes),
            ("max_batch_bytes", self.max_batch_bytes),
        ] {
            if v == 0 {
                return Err(Error::InvalidArgument {
                    name: name.into(),
                    reason: "must be at least 1 byte".into(),
                });
            }
        }
        Ok(())
    }

    /// Check the events of one publish by their sizes. `end_to_end`: the sizes are
    /// of sealed frames, which may exceed the plaintext limit by
    /// [`END_TO_END_ALLOWANCE`] (the plaintext is checked once decoded).
    pub fn check_sizes(
        &self,
        sizes: impl IntoIterator<Item = usize>,
        end_to_end: bool,
    ) -> Result<()> {
        let max_event = if end_to_end {
            self.max_event_bytes.saturating_add(END_TO_END_ALLOWANCE)
        } else {
            self.max_event_bytes
        };
        let mut total = 0usize;
        for (i, size) in sizes.into_iter().enumerate() {
            if size > max_event {
                return Err(too_large("max_event_bytes", size, max_event, Some(i)));
            }
            total = total.saturating_add(size);
        }
        if total > self.max_batch_bytes {
            return Err(too_large(
                "max_batch_bytes",
                total,
                self.max_batch_bytes,
                None,
            ));
        }
        Ok(())
    }

    /// [`Limits::check_sizes`] for a batch given as `n + 1` offsets into one buffer
    /// (malformed offsets are left to the caller's own check).
    pub fn check_offsets(&self, offsets: &[usize], end_to_end: bool) -> Result<()> {
        self.check_sizes(
            offsets.windows(2).map(|w| w[1].saturating_sub(w[0])),
            end_to_end,
        )
    }

    /// The plaintext of end-to-end event `index`, as its decoded frame declares it.
    pub fn check_plaintext(&self, size: usize, index: usize) -> Result<()> {
        if size > self.max_event_bytes {
            return Err(too_large(
                "max_event_bytes",
                size,
                self.max_event_bytes,
                Some(index),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(event: usize, batch: usize) -> Limits {
        Limits {
            max_event_bytes: event,
            max_batch_bytes: batch,
        }
    }

    #[test]
    fn the_first_oversized_event_is_named_then_the_batch_total() {
        let l = limits(10, 25);
        assert!(l.check_offsets(&[0, 10, 20, 25], false).is_ok());
        match l.check_offsets(&[0, 10, 21, 25], false) {
            Err(Error::TooLarge {
                limit_name: "max_event_bytes",
                size: 11,
                limit: 10,
                index: Some(1),
            }) => {}
            other => panic!("{other:?}"),
        }
        match l.check_offsets(&[0, 10, 20, 26], false) {
            Err(Error::TooLarge {
                limit_name: "max_batch_bytes",
                size: 26,
                limit: 25,
                index: None,
            }) => {}
            other => panic!("{other:?}"),
        }
        // Frames get room for their envelope; plaintext does not.
        assert!(l.check_offsets(&[0, 11], true).is_ok());
        assert!(l.check_plaintext(11, 0).is_err());
        // Offsets that go backwards are not this check's business, nor a panic.
        assert!(l.check_offsets(&[5, 0], false).is_ok());
        assert!(limits(0, 1).validate().is_err());
    }
}
