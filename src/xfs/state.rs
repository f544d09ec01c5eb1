//! The tracker's node table: plain data and the rules of §3.3, no sockets.
//!
//! Entries are keyed by address `(ip, port)` and kept in registration order (find replies list
//! nodes in that order). A node that restarts on the same address replaces its entry instead of
//! leaving a stale twin behind, as the original's id-keyed list did.

use crate::xfs::wire::{self, FileEntry, FileList, Message, NodeInfo};
use std::net::IpAddr;

/// The most bytes a find reply may have: original nodes read it with one `recv(2048)`.
pub const MAX_REPLY_BYTES: usize = 2048;

/// One node as the tracker knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedNode {
    pub id: String,
    pub ip: String,
    pub port: u16,
    /// Up (answered or contacted us since it was last found dead).
    pub up: bool,
    pub files: Vec<FileEntry>,
    /// The address the registration came from (not the one it announced): what the cap counts.
    pub from: IpAddr,
}

/// A new entry was refused: `from` already has `cap` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapReached {
    pub from: IpAddr,
    pub cap: usize,
}

/// What a FileList message did to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListOutcome {
    /// An entry was found (by id, or by address adopting the new id) and updated.
    Updated,
    /// No entry matched; one was added from `node_ip`/`node_port`.
    Added,
    /// No entry matched and the list has no address to add it under.
    Ignored,
    /// No entry matched and its sender already has as many entries as allowed.
    Capped(CapReached),
}

/// Default of `--max-nodes-per-ip`: every node of a lab machine registers from one address, and
/// 1,000 fake registrations from one address made every `find` open 1,000 connections.
pub const DEFAULT_NODES_PER_IP: usize = 64;

/// All nodes, in registration order.
#[derive(Debug)]
pub struct NodeTable {
    nodes: Vec<TrackedNode>,
    /// Most entries one sending address may hold.
    per_ip_cap: usize,
}

impl Default for NodeTable {
    fn default() -> Self {
        NodeTable::new(DEFAULT_NODES_PER_IP)
    }
}

impl NodeTable {
    /// An empty table letting each sending address hold at most `per_ip_cap` entries.
    pub fn new(per_ip_cap: usize) -> NodeTable {
        NodeTable {
            nodes: Vec::new(),
            per_ip_cap,
        }
    }

    /// Whether `from` may add one more entry.
    fn room_for(&self, from: IpAddr) -> Result<(), CapReached> {
        let held = self.nodes.iter().filter(|n| n.from == from).count();
        if held >= self.per_ip_cap {
            return Err(CapReached {
                from,
                cap: self.per_ip_cap,
            });
        }
        Ok(())
    }

    pub fn nodes(&self) -> &[TrackedNode] {
        &self.nodes
    }

    fn position(&self, ip: &str, port: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.ip == ip && n.port == port)
    }

    /// A Node message from `from`: insert, or replace the entry at the same address (new id, up,
    /// new files). A new entry is refused when `from` already holds the cap.
    pub fn register(&mut self, info: &NodeInfo, from: IpAddr) -> Result<(), CapReached> {
        let entry = TrackedNode {
            id: info.id.clone(),
            ip: info.ip.clone(),
            port: info.port,
            up: true,
            files: info.filelist.files.clone(),
            from,
        };
        match self.position(&info.ip, info.port) {
            Some(i) => self.nodes[i] = entry,
            None => {
                self.room_for(from)?;
                self.nodes.push(entry);
            }
        }
        Ok(())
    }

    /// A FileList message from a node at `from`: by id, else by address (adopting the id), else
    /// added (within the cap).
    pub fn update_files(&mut self, list: &FileList, from: IpAddr) -> ListOutcome {
        let by_id = self.nodes.iter().position(|n| n.id == list.node_id);
        let by_addr = match (&list.node_ip, list.node_port) {
            (Some(ip), Some(port)) => self.position(ip, port),
            _ => None,
        };
        match by_id.or(by_addr) {
            Some(i) => {
                let n = &mut self.nodes[i];
                n.id = list.node_id.clone();
                n.up = true;
                n.files = list.files.clone();
                ListOutcome::Updated
            }
            None => match (&list.node_ip, list.node_port) {
                (Some(ip), Some(port)) => {
                    if let Err(capped) = self.room_for(from) {
                        return ListOutcome::Capped(capped);
                    }
                    self.nodes.push(TrackedNode {
                        from,
                        id: list.node_id.clone(),
                        ip: ip.clone(),
                        port,
                        up: true,
                        files: list.files.clone(),
                    });
                    ListOutcome::Added
                }
                _ => ListOutcome::Ignored,
            },
        }
    }

    /// Addresses of the nodes that are up: the ones a find refreshes.
    pub fn up_addresses(&self) -> Vec<(String, u16)> {
        self.nodes
            .iter()
            .filter(|n| n.up)
            .map(|n| (n.ip.clone(), n.port))
            .collect()
    }

    /// The node at `ip:port` did not accept a connection: down until it contacts us again.
    pub fn mark_down(&mut self, ip: &str, port: u16) {
        if let Some(i) = self.position(ip, port) {
            self.nodes[i].up = false;
        }
    }

    /// Fresh files from a node's `updatelist` reply (keyed by the address we asked).
    pub fn refresh_files(&mut self, ip: &str, port: u16, files: Vec<FileEntry>) {
        if let Some(i) = self.position(ip, port) {
            self.nodes[i].files = files;
        }
    }

    /// The find reply for `name`: up nodes listing it, in registration order, each reduced to
    /// the matching file, `load` and the nested address null (as the original builds them), as
    /// many as fit in [`MAX_REPLY_BYTES`].
    pub fn find(&self, name: Option<&str>) -> Vec<NodeInfo> {
        let Some(name) = name else {
            return Vec::new();
        };
        let empty_len = wire::encode(&Message::NodeList(Vec::new())).len();
        let mut used = empty_len;
        let mut out = Vec::new();
        for n in self.nodes.iter().filter(|n| n.up) {
            let Some(file) = n.files.iter().find(|f| f.name == name) else {
                continue;
            };
            let info = NodeInfo {
                id: n.id.clone(),
                status: 1,
                ip: n.ip.clone(),
                port: n.port,
                load: None,
                filelist: FileList {
                    files: vec![file.clone()],
                    node_id: n.id.clone(),
                    node_port: None,
                    node_ip: None,
                },
            };
            let one = wire::encode(&Message::NodeList(vec![info.clone()])).len() - empty_len;
            let sep = if out.is_empty() { 0 } else { 2 };
            if used + sep + one > MAX_REPLY_BYTES {
                break;
            }
            used += sep + one;
            out.push(info);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> FileEntry {
        FileEntry {
            name: name.into(),
            size: 3,
            hash_val: "0".repeat(32),
        }
    }

    fn info(id: &str, port: u16, files: &[&str]) -> NodeInfo {
        NodeInfo {
            id: id.into(),
            status: 1,
            ip: "127.0.0.1".into(),
            port,
            load: Some(0),
            filelist: FileList {
                files: files.iter().map(|f| file(f)).collect(),
                node_id: id.into(),
                node_port: None,
                node_ip: None,
            },
        }
    }

    const LO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn list(id: &str, addr: Option<u16>, files: &[&str]) -> FileList {
        FileList {
            files: files.iter().map(|f| file(f)).collect(),
            node_id: id.into(),
            node_port: addr,
            node_ip: addr.map(|_| "127.0.0.1".to_string()),
        }
    }

    #[test]
    fn registration_replaces_the_entry_at_the_same_address() {
        let mut t = NodeTable::default();
        t.register(&info("a", 1, &["x"]), LO).unwrap();
        t.register(&info("b", 2, &["x"]), LO).unwrap();
        t.mark_down("127.0.0.1", 1);
        t.register(&info("a2", 1, &["y"]), LO).unwrap();
        assert_eq!(t.nodes().len(), 2);
        assert_eq!(t.nodes()[0].id, "a2");
        assert!(t.nodes()[0].up);
        assert_eq!(t.find(Some("x")).len(), 1);
        assert_eq!(t.find(Some("y"))[0].port, 1);
    }

    #[test]
    fn filelists_match_by_id_then_address_else_are_added_or_ignored() {
        let mut t = NodeTable::default();
        t.register(&info("a", 1, &[]), LO).unwrap();
        assert_eq!(
            t.update_files(&list("a", None, &["f"]), LO),
            ListOutcome::Updated
        );
        assert_eq!(
            t.update_files(&list("new-id", Some(1), &["g"]), LO),
            ListOutcome::Updated
        );
        assert_eq!(t.nodes()[0].id, "new-id");
        assert_eq!(
            t.update_files(&list("c", Some(3), &["g"]), LO),
            ListOutcome::Added
        );
        assert_eq!(
            t.update_files(&list("d", None, &["g"]), LO),
            ListOutcome::Ignored
        );
        assert_eq!(t.nodes().len(), 2);
        t.mark_down("127.0.0.1", 3);
        assert_eq!(t.up_addresses(), vec![("127.0.0.1".to_string(), 1)]);
        assert_eq!(
            t.update_files(&list("c", None, &["g"]), LO),
            ListOutcome::Updated
        );
        assert_eq!(t.up_addresses().len(), 2);
    }

    #[test]
    fn find_lists_up_nodes_with_only_the_matching_file_in_order() {
        let mut t = NodeTable::default();
        t.register(&info("a", 1, &["x", "f"]), LO).unwrap();
        t.register(&info("b", 2, &["g"]), LO).unwrap();
        t.register(&info("c", 3, &["f"]), LO).unwrap();
        t.register(&info("d", 4, &["f"]), LO).unwrap();
        t.mark_down("127.0.0.1", 4);
        let got = t.find(Some("f"));
        assert_eq!(got.iter().map(|n| n.port).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(got[0].filelist.files, vec![file("f")]);
        assert_eq!(got[0].load, None);
        assert_eq!(got[0].filelist.node_ip, None);
        assert!(t.find(Some("nope")).is_empty());
        assert!(t.find(None).is_empty());
    }

    #[test]
    fn one_sending_address_holds_at_most_the_cap_but_may_always_re_register() {
        let mut t = NodeTable::new(2);
        t.register(&info("a", 1, &[]), LO).unwrap();
        t.register(&info("b", 2, &[]), LO).unwrap();
        let third = t.register(&info("c", 3, &[]), LO);
        assert_eq!(third, Err(CapReached { from: LO, cap: 2 }));
        assert_eq!(
            t.update_files(&list("c", Some(3), &[]), LO),
            ListOutcome::Capped(CapReached { from: LO, cap: 2 })
        );
        t.register(&info("a2", 1, &["x"]), LO).unwrap();
        let other: IpAddr = "10.0.0.9".parse().unwrap();
        t.register(&info("c", 3, &[]), other).unwrap();
        assert_eq!(t.nodes().len(), 3);
    }

    #[test]
    fn find_reply_never_exceeds_2048_bytes() {
        let mut t = NodeTable::new(100);
        for port in 1..=40 {
            t.register(&info(&format!("node-{port}"), port, &["f"]), LO)
                .unwrap();
        }
        let got = t.find(Some("f"));
        let bytes = wire::encode(&Message::NodeList(got.clone()));
        assert!(bytes.len() <= MAX_REPLY_BYTES, "{}", bytes.len());
        assert!(got.len() > 3 && got.len() < 40);
        let mut one_more = got.clone();
        one_more.push(got[0].clone());
        assert!(wire::encode(&Message::NodeList(one_more)).len() > MAX_REPLY_BYTES);
    }
}
