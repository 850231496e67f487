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
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 8);
    let spare: Spare = Mutex::new(Vec::new());
    let spare_input: Spare = Mutex::new(Vec::new());
    let process = |chunk: &[u8]| {
        let reused = spare.lock().ok().and_then(|mut s| s.pop());
        let mut buf = reused.unwrap_or_else(|| Vec::with_capacity(chunk.len() * 3));
        let mut counts = (0, 0);
        // One iterator over the chunk's line ends: for short lines (an identifier is 18 characters) a
        // search call per line costs more than the line's own work.
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', chunk) {
            f(&chunk[start..end], &mut buf, &mut counts);
            start = end + 1;
        }
        if start < chunk.len() {
            f(&chunk[start..], &mut buf, &mut counts);
        }
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
