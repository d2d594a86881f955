//! Batches of sealed frames (docs/FORMAT.md) as [`BatchJob`]s: the output layout is
//! planned first (frame or plaintext lengths), then every item is sealed or opened
//! straight into its slot of one caller-allocated buffer, split across cores when
//! the batch is large.

use crate::error::Result;
use crate::seal::aad::{encode_aad, AadFields, AadWriter};
use crate::seal::aead::{self, check_out, layout, par_chunks, BatchJob, Cipher, TAG_LEN};
use crate::seal::frame::{Frame, FrameWriter, VERSION};
use crate::seal::nonce::{make_nonce, PREFIX_LEN};

/// Seal payloads into frames of one mode and key; item `i` takes counter
/// `first_counter + i` (claimed by the caller, so no nonce repeats under the key).
pub struct SealFrames<'a> {
    cipher: Cipher,
    key_id: String,
    writer: FrameWriter,
    prefix: [u8; PREFIX_LEN],
    first_counter: u64,
    aads: &'a [AadFields<'a>],
    payloads: Vec<&'a [u8]>,
    out_offsets: Vec<usize>,
}

impl<'a> SealFrames<'a> {
    /// `aads` and `payloads` have the same length (checked by the callers).
    pub(crate) fn new(
        cipher: Cipher,
        key_id: &str,
        writer: FrameWriter,
        prefix: [u8; PREFIX_LEN],
        first_counter: u64,
        aads: &'a [AadFields<'a>],
        payloads: Vec<&'a [u8]>,
    ) -> Self {
        let out_offsets = layout(payloads.iter().map(|p| writer.frame_len(p.len())));
        Self {
            cipher,
            key_id: key_id.to_owned(),
            writer,
            prefix,
            first_counter,
            aads,
            payloads,
            out_offsets,
        }
    }
}

impl BatchJob for SealFrames<'_> {
    fn out_offsets(&self) -> &[usize] {
        &self.out_offsets
    }

    fn run(&self, out: &mut [u8]) -> Result<()> {
        check_out(out, &self.out_offsets)?;
        let mode = self.writer.mode() as u8;
        par_chunks(out, &self.out_offsets, |first, offs, slice| {
            let base = offs[0];
            let mut aads = AadWriter::new(VERSION, mode, &self.key_id)?;
            for (j, w) in offs.windows(2).enumerate() {
                let i = first + j;
                let slot = &mut slice[w[0] - base..w[1] - base];
                let nonce = make_nonce(&self.prefix, self.first_counter + i as u64);
                let at = self.writer.write_header(slot, &nonce)?;
                aead::seal_into(
                    &self.cipher,
                    &nonce,
                    aads.encode(&self.aads[i])?,
                    self.payloads[i],
                    &mut slot[at..],
                )?;
            }
            Ok(())
        })
    }
}

/// Open decoded frames (`which[i]` picks the cipher of item `i`): each plaintext is
/// decrypted from its frame straight into its output slot.
pub struct OpenFrames<'a> {
    decoded: Vec<Frame<'a>>,
    which: Vec<usize>,
    ciphers: Vec<Cipher>,
    aads: &'a [AadFields<'a>],
    out_offsets: Vec<usize>,
}

impl<'a> OpenFrames<'a> {
    /// `decoded`, `which` and `aads` have the same length, every `which[i]` indexes
    /// `ciphers`, and every frame's `sealed` holds at least a tag (the decoder's
    /// guarantee).
    pub(crate) fn new(
        decoded: Vec<Frame<'a>>,
        which: Vec<usize>,
        ciphers: Vec<Cipher>,
        aads: &'a [AadFields<'a>],
    ) -> Self {
        let out_offsets = layout(decoded.iter().map(|f| f.sealed.len() - TAG_LEN));
        Self {
            decoded,
            which,
            ciphers,
            aads,
            out_offsets,
        }
    }
}

impl OpenFrames<'_> {
    /// Open items `first..` into `slice`, their slots, laid out by `offs` (a window
    /// of [`BatchJob::out_offsets`] from item `first`), as [`BatchJob::run`] does for
    /// each chunk; for callers that do more with a chunk while it is in cache.
    pub(crate) fn open_chunk(&self, first: usize, offs: &[usize], slice: &mut [u8]) -> Result<()> {
        let base = offs.first().copied().unwrap_or(0);
        let mut aad = Vec::with_capacity(128);
        for (j, w) in offs.windows(2).enumerate() {
            let i = first + j;
            let f = &self.decoded[i];
            aad.clear();
            encode_aad(&mut aad, f.version, f.mode as u8, f.key_id, &self.aads[i])?;
            aead::open_into(
                &self.ciphers[self.which[i]],
                f.nonce,
                &aad,
                f.sealed,
                &mut slice[w[0] - base..w[1] - base],
            )
            .map_err(|e| aead::with_index(e, i))?;
        }
        Ok(())
    }
}

impl BatchJob for OpenFrames<'_> {
    fn out_offsets(&self) -> &[usize] {
        &self.out_offsets
    }

    fn run(&self, out: &mut [u8]) -> Result<()> {
        check_out(out, &self.out_offsets)?;
        par_chunks(out, &self.out_offsets, |first, offs, slice| {
            self.open_chunk(first, offs, slice)
        })
    }
}
