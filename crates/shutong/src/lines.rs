//! Line-by-line batch processing on all cores, for the CLI's batch modes (`shutong check KIND -`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};

const CHUNK: usize = 1 << 20;

/// Counts of (valid, invalid) lines, or whatever pair a line function keeps.
pub type Counts = (u64, u64);

/// A chunk of whole lines, numbered in input order: the buffer and how many of its bytes are the chunk.
type Job = (u64, Vec<u8>, usize);
/// A processed chunk: its number, its output, its counts.
type Done = (u64, Vec<u8>, Counts);

/// Buffers already used, kept for the next chunks: a fresh multi-megabyte buffer per chunk would cost
/// page faults (and, for input, zeroing) on every chunk. One pool holds written output buffers, another
/// processed input buffers.
type Spare = Mutex<Vec<Vec<u8>>>;

/// Puts processed chunks back in input order and writes them.
struct Reorder<'a> {
    out: &'a mut dyn Write,
    pending: BTreeMap<u64, (Vec<u8>, Counts)>,
    next: u64,
    totals: Counts,
    spare: &'a Spare,
}

impl Reorder<'_> {
    fn accept(&mut self, (seq, buf, counts): Done) -> std::io::Result<()> {
        self.pending.insert(seq, (buf, counts));
        while let Some((mut buf, counts)) = self.pending.remove(&self.next) {
            self.out.write_all(&buf)?;
            buf.clear();
            if let Ok(mut spare) = self.spare.lock() {
                spare.push(buf);
            }
            self.totals.0 += counts.0;
            self.totals.1 += counts.1;
            self.next += 1;
        }
        Ok(())
    }

    fn wait_one(&mut self, done: &Receiver<Done>) -> std::io::Result<()> {
        let d = done.recv().map_err(|_| std::io::Error::other("a worker thread stopped"))?;
        self.accept(d)
    }
}

/// Applies `f` to every line of `input` (without its line end) and writes what it appends, in input order.
/// Input is read in 1 MiB chunks cut at line ends; the chunks are processed by one worker per core while
/// this thread reads and writes (standard input and output locks stay on it). At most two chunks per
/// worker are in flight, so memory stays bounded whatever the input size.
pub fn map_lines<F>(input: &mut dyn Read, out: &mut dyn Write, f: F) -> std::io::Result<Counts>
where
    F: Fn(&[u8], &mut Vec<u8>, &mut Counts) + Sync,
{
    map_chunks(input, out, |chunk, buf, counts| {
        // One iterator over the chunk's line ends: for short lines (an identifier is 18 characters) a
        // search call per line costs more than the line's own work.
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', chunk) {
            f(&chunk[start..end], buf, counts);
            start = end + 1;
        }
        if start < chunk.len() {
            f(&chunk[start..], buf, counts);
        }
    })
}

/// Calls `fixed` on each line of `chunk` that is exactly `W` bytes long, found without a search: the byte
/// after it is the line end. `fixed` must return `false` for a line it does not take, and for any line
/// that holds a line end itself (then the line was not really `W` bytes long); such lines, and all others,
/// go to `other`, found by a search. Lines are visited in order, as [`map_lines`] cuts them.
///
/// Batches of one identifier kind are mostly lines of one width: this spares the search per line, which
/// costs about as much as checking the line.
pub fn for_each_line_fixed<const W: usize, S>(
    chunk: &[u8],
    state: &mut S,
    fixed: impl Fn(&mut S, &[u8; W]) -> bool,
    other: impl Fn(&mut S, &[u8]),
) {
    let mut p = 0;
    while p < chunk.len() {
        if let Some(next) = chunk.get(p..p + W + 1)
            && next[W] == b'\n'
            && let Ok(line) = <&[u8; W]>::try_from(&next[..W])
            && fixed(state, line)
        {
            p += W + 1;
            continue;
        }
        let end = memchr::memchr(b'\n', &chunk[p..]).map_or(chunk.len(), |i| p + i);
        other(state, &chunk[p..end]);
        p = end + 1;
    }
}

/// Like [`map_lines`], but `f` is given whole chunks of lines (each ends with a line end, except perhaps
/// the input's last) and appends their output.
pub fn map_chunks<F>(input: &mut dyn Read, out: &mut dyn Write, f: F) -> std::io::Result<Counts>
where
    F: Fn(&[u8], &mut Vec<u8>, &mut Counts) + Sync,
{
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 8);
    let spare: Spare = Mutex::new(Vec::new());
    let spare_input: Spare = Mutex::new(Vec::new());
    let process = |chunk: &[u8]| {
        let reused = spare.lock().ok().and_then(|mut s| s.pop());
        let mut buf = reused.unwrap_or_else(|| Vec::with_capacity(chunk.len() * 3));
        let mut counts = (0, 0);
        f(chunk, &mut buf, &mut counts);
        (buf, counts)
    };
    std::thread::scope(|scope| {
        let (job_tx, job_rx) = sync_channel::<Job>(workers);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = channel::<Done>();
        for _ in 0..workers {
            let (job_rx, done_tx, process) = (job_rx.clone(), done_tx.clone(), &process);
            let spare_input = &spare_input;
            scope.spawn(move || worker(&job_rx, &done_tx, spare_input, process));
        }
        drop(done_tx);
        let mut reorder = Reorder { out, pending: BTreeMap::new(), next: 0, totals: (0, 0), spare: &spare };
        let sent = read_chunks(input, &job_tx, &done_rx, &mut reorder, &spare_input, 2 * workers as u64);
        drop(job_tx);
        let sent = sent?;
        while reorder.next < sent {
            reorder.wait_one(&done_rx)?;
        }
        reorder.out.flush()?;
        Ok(reorder.totals)
    })
}

fn worker(jobs: &Mutex<Receiver<Job>>, done: &Sender<Done>, spare_input: &Spare, process: &(impl Fn(&[u8]) -> (Vec<u8>, Counts) + Sync)) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((seq, chunk, len)) = job else { return };
        let (buf, counts) = process(&chunk[..len]);
        if let Ok(mut spare) = spare_input.lock() {
            spare.push(chunk);
        }
        if done.send((seq, buf, counts)).is_err() {
            return;
        }
    }
}

/// Reads chunks cut after their last line end (the tail starts the next chunk) and hands them out, writing
/// finished ones meanwhile. Returns how many chunks were sent. Buffers come from `spare` when a worker has
/// returned one; their bytes past the chunk are stale and never read.
fn read_chunks(
    input: &mut dyn Read,
    jobs: &SyncSender<Job>,
    done: &Receiver<Done>,
    reorder: &mut Reorder,
    spare: &Spare,
    max_in_flight: u64,
) -> std::io::Result<u64> {
    let mut seq = 0u64;
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let filled = carry.len();
        let target = filled.max(CHUNK / 2) + CHUNK;
        let mut chunk = spare.lock().ok().and_then(|mut s| s.pop()).unwrap_or_default();
        if chunk.len() < target {
            chunk.resize(target, 0);
        }
        chunk[..filled].copy_from_slice(&carry);
        let mut end = filled;
        while end < target {
            let n = input.read(&mut chunk[end..target])?;
            if n == 0 {
                break;
            }
            end += n;
        }
        let at_eof = end < target;
        let len = if at_eof {
            carry.clear();
            end
        } else {
            match memchr::memrchr(b'\n', &chunk[..end]) {
                Some(last) => {
                    carry.clear();
                    carry.extend_from_slice(&chunk[last + 1..end]);
                    last + 1
                }
                None => {
                    // One line longer than the chunk: keep reading it.
                    carry.clear();
                    carry.extend_from_slice(&chunk[..end]);
                    continue;
                }
            }
        };
        if len > 0 {
            while seq - reorder.next >= max_in_flight {
                reorder.wait_one(done)?;
            }
            jobs.send((seq, chunk, len)).map_err(|_| std::io::Error::other("the worker threads stopped"))?;
            seq += 1;
        }
        if at_eof {
            return Ok(seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upper(input: &[u8]) -> (Vec<u8>, Counts) {
        let mut out = Vec::new();
        let counts = map_lines(&mut &input[..], &mut out, |line, buf, c| {
            buf.extend(line.iter().map(u8::to_ascii_uppercase));
            buf.push(b'\n');
            c.0 += 1;
        })
        .unwrap();
        (out, counts)
    }

    #[test]
    fn keeps_order_and_every_line() {
        let mut input = Vec::new();
        // Enough chunks that input and output buffers are reused, with lines of varying length so that
        // a reused buffer's stale bytes differ from the new chunk's.
        for i in 0..1_500_000 {
            input.extend_from_slice(format!("line-{i}-{}\n", "x".repeat(i % 7)).as_bytes());
        }
        let (out, counts) = upper(&input);
        assert_eq!(counts.0, 1_500_000);
        assert_eq!(out, input.to_ascii_uppercase());
    }

    /// Lines cut by [`for_each_line_fixed`] are the lines [`map_lines`] cuts, whatever their widths.
    #[test]
    fn fixed_width_cutting_agrees() {
        let mut seed = 17u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for _ in 0..200 {
            // Mostly lines of 4 bytes, some of other widths, some empty, and at times no final line end.
            let mut chunk = Vec::new();
            for _ in 0..next() % 40 {
                let width = if next() % 3 == 0 { next() % 9 } else { 4 };
                chunk.extend((0..width).map(|i| b"abc\n"[(i + next()) % 3]));
                chunk.push(b'\n');
            }
            if next() % 2 == 0 {
                chunk.extend_from_slice(b"tail");
            }
            let mut expected = Vec::new();
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', &chunk) {
                expected.push(chunk[start..end].to_vec());
                start = end + 1;
            }
            if start < chunk.len() {
                expected.push(chunk[start..].to_vec());
            }
            let mut got: Vec<(bool, Vec<u8>)> = Vec::new();
            for_each_line_fixed::<4, _>(
                &chunk,
                &mut got,
                |got, line| {
                    // A line of 4 bytes holds no line end.
                    if line.contains(&b'\n') {
                        return false;
                    }
                    got.push((true, line.to_vec()));
                    true
                },
                |got, line| got.push((false, line.to_vec())),
            );
            assert_eq!(got.iter().map(|(_, l)| l.clone()).collect::<Vec<_>>(), expected, "{:?}", String::from_utf8_lossy(&chunk));
            // Every line of 4 bytes followed by a line end went the fixed way.
            assert!(got.iter().all(|(fixed, l)| *fixed || l.len() != 4 || l == b"tail"));
        }
    }

    #[test]
    fn edge_cases() {
        assert_eq!(upper(b""), (vec![], (0, 0)));
        assert_eq!(upper(b"a"), (b"A\n".to_vec(), (1, 0)));
        assert_eq!(upper(b"a\n\nb\n"), (b"A\n\nB\n".to_vec(), (3, 0)));
        // A line longer than a chunk.
        let long = vec![b'x'; 3 * CHUNK];
        let (out, counts) = upper(&[&long[..], b"\nend"].concat());
        assert_eq!(counts.0, 2);
        assert_eq!(out.len(), 3 * CHUNK + 5);
    }
}
