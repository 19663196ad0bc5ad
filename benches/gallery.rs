//! `make bench-gallery`: one probe against galleries of 1k, 10k and 100k
//! enrolled faces (3 per subject, synthetic unit-norm-ish embeddings like
//! dlib's), p50/p99 per search and the memory the gallery holds; beside it,
//! the plainest exact scan (one `Embedding::distance` per face into a map),
//! run back to back, and their ratio.

use std::collections::HashMap;
use std::time::Instant;

use mongodb::bson::oid::ObjectId;
use vigil::people::gallery::{Gallery, GalleryFace};
use vigil::people::{SubjectFaceId, SubjectId};
use vigil::users::UserId;
use vigil::vision::Embedding;

#[path = "synthetic.rs"]
mod synthetic;
use synthetic::Rng;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn timed(probes: &[Embedding], mut search: impl FnMut(&Embedding) -> usize) -> (f64, f64) {
    let mut ms: Vec<f64> = probes
        .iter()
        .map(|p| {
            let started = Instant::now();
            std::hint::black_box(search(p));
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (quantile(&ms, 0.5), quantile(&ms, 0.99))
}

fn main() {
    let owner = UserId(ObjectId::new());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let probes: Vec<Embedding> = (0..200).map(|_| rng.embedding()).collect();
    println!("faces    subjects  vigil p50 ms  p99 ms   plain p50 ms  p99 ms   memory MiB  ratio");
    let mut last_ratio = 0.0;
    for faces in [1_000usize, 10_000, 100_000] {
        let gallery = Gallery::default();
        let subjects: Vec<SubjectId> = (0..faces.div_ceil(3)).map(|_| SubjectId::new()).collect();
        let embeddings: Vec<Embedding> = (0..faces).map(|_| rng.embedding()).collect();
        let before = rss_kib();
        for (i, embedding) in embeddings.iter().enumerate() {
            gallery.insert(GalleryFace {
                owner,
                subject: subjects[i / 3],
                face: SubjectFaceId::new(),
                embedding: *embedding,
                negative: false,
            });
        }
        // The gallery's own memory: vectors, ids and the face index.
        let memory = (rss_kib().saturating_sub(before)) as f64 / 1024.0;
        let plain: Vec<(SubjectId, Embedding)> = embeddings
            .iter()
            .enumerate()
            .map(|(i, e)| (subjects[i / 3], *e))
            .collect();
        let owners = [owner];
        let (p50, p99) = timed(&probes, |p| gallery.distances(&owners, p).len());
        let (plain50, plain99) = timed(&probes, |p| {
            let mut by: HashMap<SubjectId, (f32, u32)> = HashMap::new();
            for (s, e) in &plain {
                let entry = by.entry(*s).or_default();
                entry.0 += p.distance(e);
                entry.1 += 1;
            }
            by.len()
        });
        last_ratio = p50 / plain50;
        println!(
            "{faces:<8} {:<9} {p50:>12.3} {p99:>7.3} {plain50:>14.3} {plain99:>7.3} {memory:>12.1} {last_ratio:>6.2}",
            subjects.len()
        );
    }
    println!("ratio_vs_plain_scan@100k={last_ratio:.2}");
}
