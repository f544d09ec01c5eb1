//! `local_chunks.txt` as the client updates it while downloads land.

use super::chunk_list::{self, ChunkList};
use std::io;
use std::path::Path;
use std::sync::{Condvar, Mutex};

/// `local_chunks.txt` with group commit. Each landed chunk must be in the file on disk before it
/// is announced, and every rewrite is fsynced; with five downloads landing at once, one fsync under
/// a lock per chunk serialised them all. Instead a chunk that lands while a rewrite is in flight
/// waits for the next rewrite, which covers every chunk added meanwhile.
pub struct ListWriter {
    state: Mutex<ListState>,
    saved: Condvar,
}

struct ListState {
    list: ChunkList,
    added: u64,
    saved: u64,
    saving: bool,
}

impl ListWriter {
    pub fn new(list: ChunkList) -> ListWriter {
        ListWriter {
            state: Mutex::new(ListState {
                list,
                added: 0,
                saved: 0,
                saving: false,
            }),
            saved: Condvar::new(),
        }
    }

    /// Adds `<idx>,chunk_<idx>` and returns once a rewrite containing it is on disk.
    pub fn add_and_save(&self, folder: &Path, idx: u32) -> io::Result<()> {
        let poisoned = || io::Error::other("the chunk list lock is poisoned");
        let mut st = self.state.lock().map_err(|_| poisoned())?;
        st.list.add_chunk(idx);
        st.added += 1;
        let mine = st.added;
        while st.saved < mine {
            if st.saving {
                st = self.saved.wait(st).map_err(|_| poisoned())?;
                continue;
            }
            st.saving = true;
            let (text, upto) = (st.list.render(), st.added);
            drop(st);
            let written = chunk_list::write_atomically(folder, &text);
            st = self.state.lock().map_err(|_| poisoned())?;
            st.saving = false;
            self.saved.notify_all();
            written?;
            st.saved = st.saved.max(upto);
        }
        Ok(())
    }
}
