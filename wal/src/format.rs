//! The on-disk layout, byte by byte, as `FORMAT.md` describes it. Offsets are
//! constants here so the code mirrors the document.

use crate::Lsn;

/// Current format version of segments and snapshots.
pub(crate) const VERSION: u8 = 1;

pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"VIGILWAL";
pub(crate) const SNAPSHOT_MAGIC: &[u8; 8] = b"VIGILSNP";

/// Segment header: magic (8), version (1), flags (1), reserved (6), first
/// LSN (8), reserved (4), CRC-32 of bytes 0..28 (4).
pub(crate) const SEGMENT_HEADER: usize = 32;
const SH_VERSION: usize = 8;
const SH_FLAGS: usize = 9;
/// Segment flag: the records just before this segment's first LSN were lost
/// to a failed fsync (or never existed, after a snapshot beyond the log), so
/// the previous segment may end short of `first_lsn - 1`.
pub(crate) const SEG_FLAG_GAP_BEFORE: u8 = 1;
const SH_FIRST_LSN: usize = 16;
const SH_CRC: usize = 28;

/// Frame header: length and flags (4), CRC-32 (4), LSN (8).
pub(crate) const FRAME_HEADER: usize = 16;
const FH_CRC: usize = 4;
const FH_LSN: usize = 8;
/// Set on every record of a batch but its last.
pub(crate) const FLAG_CONTINUES: u32 = 1 << 31;
/// Largest payload the framing can express.
pub(crate) const MAX_PAYLOAD: usize = (1 << 30) - 1;

/// Snapshot header: magic (8), version (1), reserved (7), LSN (8), length (8);
/// then the data; then CRC-32 of everything before it (4).
pub(crate) const SNAPSHOT_HEADER: usize = 32;

pub(crate) fn segment_name(first_lsn: Lsn) -> String {
    format!("{first_lsn:020}.wal")
}

pub(crate) fn parse_segment_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The next segment while a background thread fills it with zeros
/// (`Options::zero_fill`); renamed to its segment name at the roll. Recovery
/// removes any file whose name ends in [`TEMP_SEGMENT_SUFFIX`].
pub(crate) const PREPARED_SEGMENT: &str = "next.wal.tmp";
pub(crate) const TEMP_SEGMENT_SUFFIX: &str = ".wal.tmp";

pub(crate) fn snapshot_name(lsn: Lsn) -> String {
    format!("snap-{lsn:020}.snap")
}

pub(crate) fn parse_snapshot_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_prefix("snap-")?.strip_suffix(".snap")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(crate) fn encode_segment_header(first_lsn: Lsn, flags: u8) -> [u8; SEGMENT_HEADER] {
    let mut h = [0u8; SEGMENT_HEADER];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[SH_VERSION] = VERSION;
    h[SH_FLAGS] = flags;
    h[SH_FIRST_LSN..SH_FIRST_LSN + 8].copy_from_slice(&first_lsn.to_le_bytes());
    let crc = crc32fast::hash(&h[..SH_CRC]);
    h[SH_CRC..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// What a segment header says, or why it cannot be read.
pub(crate) enum HeaderCheck {
    Ok { first_lsn: Lsn, flags: u8 },
    Unsupported(u8),
    Bad(&'static str),
}

pub(crate) fn decode_segment_header(buf: &[u8]) -> HeaderCheck {
    let Some(h) = buf.get(..SEGMENT_HEADER) else {
        return HeaderCheck::Bad("file shorter than the segment header");
    };
    if &h[..8] != SEGMENT_MAGIC {
        return HeaderCheck::Bad("bad magic");
    }
    let crc = u32::from_le_bytes(h[SH_CRC..].try_into().unwrap_or_default());
    if crc32fast::hash(&h[..SH_CRC]) != crc {
        return HeaderCheck::Bad("header checksum mismatch");
    }
    if h[SH_VERSION] > VERSION || h[SH_VERSION] == 0 {
        return HeaderCheck::Unsupported(h[SH_VERSION]);
    }
    let first_lsn = u64::from_le_bytes(
        h[SH_FIRST_LSN..SH_FIRST_LSN + 8]
            .try_into()
            .unwrap_or_default(),
    );
    HeaderCheck::Ok {
        first_lsn,
        flags: h[SH_FLAGS],
    }
}

/// Append one frame to `out`. `payload_crc` is a hasher that has already seen
/// the payload (computed outside the log's lock); the frame CRC covers the
/// payload, then the length-and-flags word, then the LSN.
pub(crate) fn encode_frame(
    out: &mut Vec<u8>,
    lsn: Lsn,
    payload: &[u8],
    payload_crc: &crc32fast::Hasher,
    continues: bool,
) {
    let start = out.len();
    encode_unsealed_frame(out, payload, continues);
    seal_frame(&mut out[start..], lsn, payload_crc);
}

/// Append a frame whose LSN and CRC are still zero: the part of the encoding
/// (the payload copy) that an appender does before it has a sequence number
/// and outside the log's lock. [`seal_frame`] completes it.
pub(crate) fn encode_unsealed_frame(out: &mut Vec<u8>, payload: &[u8], continues: bool) {
    let len_flags = payload.len() as u32 | if continues { FLAG_CONTINUES } else { 0 };
    out.extend_from_slice(&len_flags.to_le_bytes());
    out.extend_from_slice(&[0; FRAME_HEADER - 4]);
    out.extend_from_slice(payload);
}

/// Give the frame at the start of `frame` (encoded by
/// [`encode_unsealed_frame`]) its LSN and CRC; `payload_crc` has seen the
/// payload. Touches the 12 header bytes only.
pub(crate) fn seal_frame(frame: &mut [u8], lsn: Lsn, payload_crc: &crc32fast::Hasher) {
    let len_flags: [u8; 4] = frame[..FH_CRC].try_into().expect("4 bytes");
    let mut h = payload_crc.clone();
    h.update(&len_flags);
    h.update(&lsn.to_le_bytes());
    let crc = h.finalize();
    frame[FH_CRC..FH_LSN].copy_from_slice(&crc.to_le_bytes());
    frame[FH_LSN..FRAME_HEADER].copy_from_slice(&lsn.to_le_bytes());
}

/// One step of scanning frames.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A valid frame: its LSN, the payload's byte range, the batch flag, and
    /// where the next frame starts.
    Record {
        lsn: Lsn,
        start: usize,
        end: usize,
        continues: bool,
    },
    /// Clean end of data: the end of the buffer, or an all-zero header (the
    /// preallocated, never-written tail).
    End,
    /// Something that is not a valid frame.
    Bad(&'static str),
}

/// Read the frame at `pos` in `buf`. `expected` is the LSN the frame must carry.
pub(crate) fn read_frame(buf: &[u8], pos: usize, expected: Lsn) -> Frame {
    read_frame_checked(buf, pos, expected, true)
}

/// [`read_frame`], with the checksum left out when `check_crc` is false: for
/// frames whose checksum this process has already verified (a reader walks
/// them again to find payloads, and checking every record twice was a
/// measurable part of a replay). Lengths, bounds and the sequence number are
/// still checked.
pub(crate) fn read_frame_checked(buf: &[u8], pos: usize, expected: Lsn, check_crc: bool) -> Frame {
    if pos == buf.len() {
        return Frame::End;
    }
    let Some(h) = buf.get(pos..pos + FRAME_HEADER) else {
        // Fewer than a header's bytes left: clean only if they are zeros.
        return if buf[pos..].iter().all(|&b| b == 0) {
            Frame::End
        } else {
            Frame::Bad("frame header cut short")
        };
    };
    let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let len_flags = word(0);
    let crc = word(FH_CRC);
    let lsn = u64::from_le_bytes([
        h[FH_LSN],
        h[FH_LSN + 1],
        h[FH_LSN + 2],
        h[FH_LSN + 3],
        h[FH_LSN + 4],
        h[FH_LSN + 5],
        h[FH_LSN + 6],
        h[FH_LSN + 7],
    ]);
    if len_flags == 0 && crc == 0 && lsn == 0 {
        return Frame::End;
    }
    let len = (len_flags & !FLAG_CONTINUES) as usize;
    if len > MAX_PAYLOAD {
        return Frame::Bad("impossible record length");
    }
    let start = pos + FRAME_HEADER;
    let Some(payload) = buf.get(start..start + len) else {
        return Frame::Bad("record runs past the end of the segment");
    };
    if check_crc {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(payload);
        hasher.update(&len_flags.to_le_bytes());
        hasher.update(&lsn.to_le_bytes());
        if hasher.finalize() != crc {
            return Frame::Bad("record checksum mismatch");
        }
    }
    if lsn != expected {
        return Frame::Bad("sequence number out of order");
    }
    Frame::Record {
        lsn,
        start,
        end: start + len,
        continues: len_flags & FLAG_CONTINUES != 0,
    }
}

pub(crate) fn encode_snapshot(lsn: Lsn, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SNAPSHOT_HEADER + data.len() + 4);
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&[0u8; 7]);
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

pub(crate) enum SnapshotCheck {
    Ok { lsn: Lsn, start: usize, end: usize },
    Unsupported(u8),
    Bad(&'static str),
}

pub(crate) fn decode_snapshot(buf: &[u8]) -> SnapshotCheck {
    if buf.len() < SNAPSHOT_HEADER + 4 {
        return SnapshotCheck::Bad("file shorter than the snapshot header");
    }
    if &buf[..8] != SNAPSHOT_MAGIC {
        return SnapshotCheck::Bad("bad magic");
    }
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&buf[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let lsn = u64_at(16);
    let len = u64_at(24);
    if len != (buf.len() - SNAPSHOT_HEADER - 4) as u64 {
        return SnapshotCheck::Bad("length does not match the file size");
    }
    let body = buf.len() - 4;
    let mut c = [0u8; 4];
    c.copy_from_slice(&buf[body..]);
    if crc32fast::hash(&buf[..body]) != u32::from_le_bytes(c) {
        return SnapshotCheck::Bad("checksum mismatch");
    }
    if buf[8] > VERSION || buf[8] == 0 {
        return SnapshotCheck::Unsupported(buf[8]);
    }
    SnapshotCheck::Ok {
        lsn,
        start: SNAPSHOT_HEADER,
        end: body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(lsn: Lsn, payload: &[u8], continues: bool) -> Vec<u8> {
        let mut h = crc32fast::Hasher::new();
        h.update(payload);
        let mut out = Vec::new();
        encode_frame(&mut out, lsn, payload, &h, continues);
        out
    }

    proptest::proptest! {
        /// Frames encoded before their sequence number is known and sealed
        /// later (as large appends are) read back exactly as frames encoded
        /// in one go, and as the records they hold.
        #[test]
        fn unsealed_frames_sealed_later_read_back(
            payloads in proptest::collection::vec(
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 1..8),
            first in 1u64..1 << 40,
        ) {
            let n = payloads.len();
            let mut sealed_later = Vec::new();
            for (i, p) in payloads.iter().enumerate() {
                encode_unsealed_frame(&mut sealed_later, p, i + 1 < n);
            }
            let mut at = 0;
            let mut in_one_go = Vec::new();
            for (i, p) in payloads.iter().enumerate() {
                let mut h = crc32fast::Hasher::new();
                h.update(p);
                seal_frame(&mut sealed_later[at..], first + i as u64, &h);
                at += FRAME_HEADER + p.len();
                encode_frame(&mut in_one_go, first + i as u64, p, &h, i + 1 < n);
            }
            proptest::prop_assert_eq!(&sealed_later, &in_one_go);
            let mut pos = 0;
            for (i, p) in payloads.iter().enumerate() {
                match read_frame(&sealed_later, pos, first + i as u64) {
                    Frame::Record { lsn, start, end, continues } => {
                        proptest::prop_assert_eq!(lsn, first + i as u64);
                        proptest::prop_assert_eq!(&sealed_later[start..end], &p[..]);
                        proptest::prop_assert_eq!(continues, i + 1 < n);
                        pos = end;
                    }
                    other => proptest::prop_assert!(false, "frame {i}: {other:?}"),
                }
            }
            proptest::prop_assert_eq!(read_frame(&sealed_later, pos, first + n as u64), Frame::End);
        }
    }

    #[test]
    fn frame_round_trip() {
        let mut buf = frame(7, b"hello", true);
        buf.extend(frame(8, b"", false));
        assert_eq!(
            read_frame(&buf, 0, 7),
            Frame::Record {
                lsn: 7,
                start: 16,
                end: 21,
                continues: true
            }
        );
        assert_eq!(
            read_frame(&buf, 21, 8),
            Frame::Record {
                lsn: 8,
                start: 37,
                end: 37,
                continues: false
            }
        );
        assert_eq!(read_frame(&buf, 37, 9), Frame::End);
    }

    #[test]
    fn zero_header_is_end_and_damage_is_bad() {
        let mut buf = frame(1, b"abc", false);
        buf.extend([0u8; 40]);
        assert_eq!(read_frame(&buf, 19, 2), Frame::End);
        assert_eq!(
            read_frame(&buf, 0, 2),
            Frame::Bad("sequence number out of order")
        );
        buf[17] ^= 1;
        assert_eq!(
            read_frame(&buf, 0, 1),
            Frame::Bad("record checksum mismatch")
        );
        let short = frame(1, b"abcdef", false);
        assert_eq!(
            read_frame(&short[..20], 0, 1),
            Frame::Bad("record runs past the end of the segment")
        );
        assert_eq!(
            read_frame(&short[..5], 0, 1),
            Frame::Bad("frame header cut short")
        );
    }

    #[test]
    fn names() {
        assert_eq!(segment_name(42), "00000000000000000042.wal");
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert_eq!(parse_segment_name("42.wal"), None);
        assert_eq!(
            parse_snapshot_name(&snapshot_name(u64::MAX)),
            Some(u64::MAX)
        );
    }

    #[test]
    fn headers() {
        let h = encode_segment_header(99, SEG_FLAG_GAP_BEFORE);
        assert!(matches!(
            decode_segment_header(&h),
            HeaderCheck::Ok {
                first_lsn: 99,
                flags: SEG_FLAG_GAP_BEFORE
            }
        ));
        let mut bad = h;
        bad[20] ^= 0x10;
        assert!(matches!(decode_segment_header(&bad), HeaderCheck::Bad(_)));
        let s = encode_snapshot(5, b"state");
        assert!(matches!(
            decode_snapshot(&s),
            SnapshotCheck::Ok {
                lsn: 5,
                start: 32,
                end: 37
            }
        ));
    }
}
