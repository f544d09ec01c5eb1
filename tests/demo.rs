//! `peershare demo`, the README's first command: a whole swarm in one process, verified.

mod support;

use support::Proc;

fn sample_dir() -> String {
    format!("{}/dir", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn demo_shares_the_sample_files_and_verifies_every_chunk() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let dir = sample_dir();
    let mut p = Proc::start(
        tmp.path(),
        &[
            "demo",
            "--dir",
            &dir,
            "--chunk-size",
            "4096",
            "--peers",
            "3",
            "--work-dir",
            work.to_str().unwrap(),
        ],
    );
    assert_eq!(p.wait_exit(60), Some(0), "{}", p.stderr.text());
    let out = p.stdout.text();
    assert!(out.contains("all 3 clients complete in"), "{out}");
    assert!(
        out.contains("every chunk of every client matches the source SHA-256"),
        "{out}"
    );
    // The empty sample file yields no chunk; the others are cut into 4 KiB chunks.
    let chunks = std::fs::read_dir(work.join("source")).unwrap().count();
    assert!(chunks > 100, "{chunks} chunks");
    for peer in ["peer1", "peer2", "peer3"] {
        for idx in 1..=chunks {
            assert_eq!(
                std::fs::read(work.join(peer).join(format!("chunk_{idx}"))).unwrap(),
                std::fs::read(work.join("source").join(format!("chunk_{idx}"))).unwrap(),
                "{peer} chunk {idx}"
            );
        }
    }
    let log = std::fs::read_to_string(work.join("logs.log")).unwrap();
    assert!(out.contains(&format!("event log: {}", work.join("logs.log").display())));
    assert!(log
        .lines()
        .any(|l| l.starts_with("P2PTracker,GET_CHUNK_FROM,")));
    assert!(log.lines().any(|l| l.starts_with("peer1,REQUEST_CHUNK,")));
}

#[test]
fn demo_with_size_generates_a_random_file_and_fails_cleanly_on_an_empty_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("w");
    let mut p = Proc::start(
        tmp.path(),
        &[
            "demo",
            "--size",
            "2",
            "--chunk-size",
            "65536",
            "--work-dir",
            work.to_str().unwrap(),
        ],
    );
    assert_eq!(p.wait_exit(60), Some(0), "{}", p.stderr.text());
    assert!(p.stdout.text().contains("32 chunks"), "{}", p.stdout.text());

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let mut p = Proc::start(
        tmp.path(),
        &[
            "demo",
            "--dir",
            empty.to_str().unwrap(),
            "--work-dir",
            tmp.path().join("w2").to_str().unwrap(),
        ],
    );
    assert_eq!(p.wait_exit(30), Some(1));
    let err = p.stderr.text();
    assert!(
        err.contains("error:") && err.contains("no non-empty files"),
        "{err}"
    );
}

#[test]
fn demo_numeric_options_are_validated_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("w");
    for (args, needle) in [
        (vec!["--chunk-size", "0"], "--chunk-size"),
        (vec!["--peers", "0"], "--peers"),
        (vec!["--peers", "1"], "2..=64"),
        (vec!["--size", "0"], "--size"),
    ] {
        let mut all = vec!["demo", "--size", "1", "--work-dir", work.to_str().unwrap()];
        all.extend(args.iter().copied());
        let mut p = Proc::start(tmp.path(), &all);
        assert_eq!(p.wait_exit(10), Some(2), "{all:?}");
        let err = p.wait_stderr("error: ", 5);
        let first = err.lines().next().unwrap_or("");
        assert!(first.contains(needle), "{all:?}: {err}");
        assert!(!work.exists(), "{all:?} wrote {}", work.display());
    }
}

#[test]
fn a_failed_demo_removes_its_work_dir_and_a_reused_one_starts_from_a_clean_log() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("w");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let w = work.to_str().unwrap();
    let mut p = Proc::start(
        tmp.path(),
        &["demo", "--dir", empty.to_str().unwrap(), "--work-dir", w],
    );
    assert_eq!(p.wait_exit(30), Some(1));
    assert!(!work.exists(), "a failed demo leaves no work dir");
    let run = |tmp: &std::path::Path| {
        let mut p = Proc::start(
            tmp,
            &[
                "demo",
                "--size",
                "1",
                "--chunk-size",
                "262144",
                "--work-dir",
                w,
            ],
        );
        assert_eq!(p.wait_exit(60), Some(0), "{}", p.stderr.text());
        std::fs::read_to_string(work.join("logs.log")).unwrap()
    };
    let first = run(tmp.path());
    std::fs::write(work.join("keep.txt"), "mine").unwrap();
    let second = run(tmp.path());
    let count = |log: &str| log.lines().filter(|l| l.contains(",LOCAL_CHUNKS,")).count();
    assert_eq!(count(&first), count(&second), "the second log starts empty");
    assert_eq!(
        std::fs::read_to_string(work.join("keep.txt")).unwrap(),
        "mine"
    );
}
