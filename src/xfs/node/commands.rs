//! The console's commands: one line in, the original node.py's output lines out.

use super::Node;
use crate::xfs::conn::{self, RequestError};
use crate::xfs::wire::{self, Message};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What `help` prints: every command the prompt understands.
pub const HELP: &str = "Commands:
  find <filename>        which nodes have the file (asks the tracker)
  download <filename>    download the file from the best peer (latency + 10 x load)
  getload <ip> <port>    how many downloads that node is running
  updatelist             send this node's file list to the tracker again
  help                   this list
  exit                   leave (end of input and Ctrl-C do too)";

/// Runs one console line; returns `false` when the node should exit.
pub fn run_line(node: &Arc<Node>, line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [] => {}
        ["exit", ..] => return false,
        ["help", ..] => node.printer.line(HELP),
        ["updatelist", ..] => node.cmd_updatelist(),
        ["getload", ip, port, ..] => node.cmd_getload(ip, port),
        ["getload", ..] => node.printer.line("Usage: getload <ip> <port>"),
        ["find", name, ..] => node.cmd_find(name),
        ["find"] => node.printer.line("Usage: find <filename>"),
        ["download", name, ..] => {
            let n = node.clone();
            let name = name.to_string();
            let spawned = node.rt.spawn("download", move || n.download(&name));
            if let Err(e) = spawned {
                log::warn!("cannot start a download thread: {e}");
            }
        }
        ["download"] => node.printer.line("Usage: download <filename>"),
        // The spec fixes this line exactly; `help` is listed in the docs and `--help`.
        _ => node.printer.line("Invalid command"),
    }
    true
}

impl Node {
    fn cmd_find(&self, name: &str) {
        let p = &self.printer;
        match self.find_nodes(name) {
            Err(_) => p.line("Connection refused, tracking server is down"),
            Ok(None) => p.line("NACK OR NO FILE FOUND"),
            Ok(Some(nodes)) if nodes.is_empty() => p.line("No nodes found"),
            Ok(Some(nodes)) => {
                p.line("Found nodes:");
                for n in nodes {
                    p.line(&format!("{} {}", n.ip, n.port));
                }
            }
        }
    }

    fn cmd_getload(&self, ip: &str, port: &str) {
        let p = &self.printer;
        let addr = match (wire::parse_ip(ip), port.parse::<u16>()) {
            (Some(ip), Ok(port)) => SocketAddr::new(ip, port),
            _ => {
                p.line("Usage: getload <ip> <port>");
                return;
            }
        };
        let timeout = Duration::from_secs(2);
        match conn::request(addr, &wire::encode(&Message::GetLoad), timeout, timeout) {
            Err(RequestError::Connect(_)) => {
                p.line("Connection refused, cannot get load");
                p.line("Nothing");
            }
            Ok(reply) if !reply.trim_ascii().is_empty() => {
                p.line(String::from_utf8_lossy(reply.trim_ascii()).as_ref())
            }
            Ok(_) | Err(RequestError::Exchange(_)) => p.line("NACK"),
        }
    }

    fn cmd_updatelist(&self) {
        if self.send_file_list().is_err() {
            self.printer
                .line("Connection refused, tracking server is down");
        }
    }
}
