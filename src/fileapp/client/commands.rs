//! The `>>> ` commands of a registered client: `list`, `help`, `setdir`, `offer` (with
//! registering again when a restarted server forgot this client), `request` and `dereg`.

use super::*;

impl Session {
    fn say(&self, line: &str) {
        self.printer.line(line);
    }

    pub(super) fn command(&mut self, line: &str) -> Next {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&cmd, args)) = words.split_first() else {
            self.say(">>> [Invalid command. Please try again.]");
            return Next::Prompt;
        };
        if cmd == "list" {
            self.list(args);
            return Next::Prompt;
        }
        if cmd == "help" {
            self.say(HELP);
            return Next::Prompt;
        }
        if !self.registered {
            self.say(">>> [Invalid command. Please try again.]");
            return Next::Prompt;
        }
        match cmd {
            "setdir" => self.setdir(args),
            "offer" => self.offer(args),
            "request" => self.request(args),
            "dereg" => return self.dereg(args),
            _ => self.say(">>> [Invalid command. Please try again.]"),
        }
        Next::Prompt
    }

    fn list(&self, args: &[&str]) {
        if !args.is_empty() {
            self.say(">>> [Warning: list does not take any arguments]");
        }
        let rows = self.table.rows();
        if rows.is_empty() {
            self.say(">>> [No files available for download at the moment.]");
            self.say("");
            return;
        }
        // One print, so an update arriving meanwhile cannot land inside the table.
        self.say(&listing::render(&rows).join("\n"));
    }

    fn setdir(&self, args: &[&str]) {
        let [dir] = args else {
            self.say(">>> [Usage: setdir <dir>.]");
            return;
        };
        if !Path::new(dir).is_dir() {
            self.say(&format!(">>> [setdir failed: {dir} does not exist.]"));
            return;
        }
        if let Ok(mut o) = self.offered.lock() {
            o.dir = Some((dir.to_string(), PathBuf::from(dir)));
        }
        self.say(&format!(
            ">>> [Successfully set {dir} as the directory for searching offered files.]"
        ));
    }

    /// Checks every file first; the first bad one cancels the whole offer (nothing is sent).
    fn offer(&self, args: &[&str]) {
        let dir = self.offered.lock().ok().and_then(|o| o.dir.clone());
        let Some((dir_text, dir)) = dir else {
            self.say(">>> [Please set a directory first. Usage: setdir <dir>.]");
            return;
        };
        if args.is_empty() {
            self.say(&format!(
                ">>> [Please provide files to offer from {dir_text}.]"
            ));
            return;
        }
        for f in args {
            let path = match names::resolve(&dir, f) {
                Ok(p) if !f.contains(',') => p,
                _ => {
                    self.say(&format!(
                        ">>> [Offer failed: {f} is not a valid file name.]"
                    ));
                    return;
                }
            };
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() && m.len() == 0 => {
                    self.say(&format!(">>> [Offer failed: {f} is empty.]"));
                    return;
                }
                Ok(m) if m.is_file() => {}
                _ => {
                    self.say(&format!(
                        ">>> [Offer failed: {f} does not exist in {dir_text}.]"
                    ));
                    return;
                }
            }
        }
        let names: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        // Serve them from now on even if the ACK is lost: the server may have them listed.
        if let Ok(mut o) = self.offered.lock() {
            for n in &names {
                if !o.files.contains(n) {
                    o.files.push(n.clone());
                }
            }
        }
        if self.send_offer(&names) {
            return;
        }
        // No ACK: a server that restarted has forgotten us and ignores our offers. Register
        // again (the same datagram as at start-up) and offer everything offered so far.
        if self.register_again() {
            let all = self
                .offered
                .lock()
                .map(|o| o.files.clone())
                .unwrap_or_default();
            if self.send_offer(&all) {
                return;
            }
        }
        self.say(">>> [No ACK from Server, please try again later.]");
    }

    /// Sends one offer until `ACK_OFFER` (true) or the retries run out (false).
    fn send_offer(&self, names: &[String]) -> bool {
        // The ACK line is printed by the matcher, on the router thread, so it comes before the
        // `[Client table updated.]` of the broadcast that follows it (as in the original, whose
        // one listener thread printed both). `outcome` makes exactly one of ACK / give-up win.
        const WAITING: u8 = 0;
        const ACKED: u8 = 1;
        const GAVE_UP: u8 = 2;
        let outcome = Arc::new(AtomicU8::new(WAITING));
        let (seen, printer) = (outcome.clone(), self.printer.clone());
        let acked = self.rpc.request(
            &wire::encode_offer(names),
            self.config.server,
            self.config.ack,
            move |d| {
                let ack = d.bytes == wire::ACK_OFFER;
                if ack
                    && seen
                        .compare_exchange(WAITING, ACKED, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                {
                    printer.line(">>> [Offer Message received by Server.]");
                }
                ack
            },
        );
        if let Err(e) = acked {
            log::debug!("offer not acknowledged: {e}");
            let _ = outcome.compare_exchange(WAITING, GAVE_UP, Ordering::SeqCst, Ordering::SeqCst);
        }
        outcome.load(Ordering::SeqCst) == ACKED
    }

    /// Re-sends the registration after an unanswered offer; true when the server welcomed us
    /// (it had forgotten this client: tells the user so).
    fn register_again(&self) -> bool {
        let hello = wire::encode_registration(&wire::Registration {
            name: self.config.name.clone(),
            tcp_port: self.tcp_port,
        });
        let reply = self
            .rpc
            .request(&hello, self.config.server, self.config.register, |d| {
                !is_ack_word(&d.bytes) && !looks_like_table(&d.bytes)
            });
        match reply {
            Ok(d) if d.bytes == wire::WELCOME.as_bytes() => {
                self.say(">>> [The server did not know this client (was it restarted?); registered again.]");
                true
            }
            Ok(d) => {
                self.say(&format!(
                    ">>> [Registering again failed: {}]",
                    String::from_utf8_lossy(&d.bytes)
                ));
                false
            }
            Err(e) => {
                log::debug!("registering again got no answer: {e}");
                false
            }
        }
    }

    fn request(&self, args: &[&str]) {
        let [file, owner] = args else {
            self.say(">>> [Usage: request <file_name> <client_name>.]");
            return;
        };
        if *owner == self.config.name {
            self.say("< Invalid Request >");
            return;
        }
        let row = self
            .table
            .rows()
            .into_iter()
            .find(|r| r.file == *file && r.owner == *owner);
        match row {
            None => self.say("< Invalid Request >"),
            Some(row) => peer::fetch(
                &row,
                &self.config.name,
                &self.config.download_dir,
                &self.printer,
                self.config.fetch,
                &self.stop,
            ),
        }
    }

    fn dereg(&mut self, args: &[&str]) -> Next {
        let [name] = args else {
            self.say(">>> [Usage: dereg <nick-name>.]");
            return Next::Prompt;
        };
        if *name != self.config.name {
            self.say(">>> [Deregister failed: name does not match.]");
            return Next::Prompt;
        }
        if self.deregister() {
            Next::Prompt
        } else {
            Next::Exit
        }
    }

    /// Closes the listener, sends `DEREG` until acknowledged; `false` when the server is silent.
    pub(super) fn deregister(&mut self) -> bool {
        if let Some(mut service) = self.service.take() {
            service.stop();
        }
        self.registered = false;
        self.table.frozen.store(true, Ordering::SeqCst);
        let acked = self
            .rpc
            .request(wire::DEREG, self.config.server, self.config.ack, |d| {
                d.bytes == wire::ACK_DEREG
            });
        match acked {
            Ok(_) => {
                self.say(">>> [You are now Offline. Bye.]");
                true
            }
            Err(e) => {
                log::debug!("dereg not acknowledged: {e}");
                self.say(" >>> [Server not responding]");
                self.say(" >>> [Exiting]");
                false
            }
        }
    }
}
