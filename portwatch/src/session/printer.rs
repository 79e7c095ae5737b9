//! The event printer of `portwatch events`: a [`Sink`] that prints the events passing the
//! command-line filters, as text or JSON Lines, and the warnings on stderr. `--pid` asks the
//! model who owns each event's socket, so it follows the same ownership every view shows.

use std::{
    io::{self, Write},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::sink::{Flow, Sink};
use crate::{
    collect::monotonic_to_realtime_offset_ns,
    event::Event,
    model::{Input, Model},
};

/// The command-line filters. `--pid` keeps the events the model attributes to the process
/// ([`Model::event_owner`]): its own calls, and the transitions of the sockets it connected,
/// bound, listened on or accepted from its listeners, through TIME_WAIT.
pub struct Filter {
    pub pid: Option<u32>,
    pub port: Option<u16>,
    pub netns: Option<u32>,
}

impl Filter {
    /// `owner`: what the model attributed the event to (before or after taking it).
    fn keep(&self, ev: &Event, owner: Option<u32>) -> bool {
        self.netns.is_none_or(|n| n == ev.netns)
            && self.port.is_none_or(|p| ev.ports().contains(&p))
            && self.pid.is_none_or(|pid| owner == Some(pid))
    }
}

/// Prints the events that pass the filter (text or JSON Lines) and the warnings (stderr).
pub struct Printer<W: Write> {
    out: W,
    filter: Filter,
    json: bool,
    offset: i128,
    /// The owner the model gave the event's socket before taking the event (a closing event
    /// removes the socket).
    owner_before: Option<u32>,
    closed: bool,
}

impl<W: Write> Printer<W> {
    pub fn new(filter: Filter, json: bool, out: W) -> Printer<W> {
        Printer {
            out,
            filter,
            json,
            offset: monotonic_to_realtime_offset_ns(),
            owner_before: None,
            closed: false,
        }
    }

    fn write(&mut self, ev: &Event) -> io::Result<()> {
        let wall = wall_time(ev.ts_ns, self.offset);
        if self.json {
            #[derive(serde::Serialize)]
            struct Line<'a> {
                time: String,
                #[serde(flatten)]
                event: &'a Event,
            }
            let line = Line {
                time: humantime::format_rfc3339_micros(wall).to_string(),
                event: ev,
            };
            serde_json::to_writer(&mut self.out, &line).map_err(io::Error::other)?;
            self.out.write_all(b"\n")
        } else {
            let t = humantime::format_rfc3339_micros(wall).to_string();
            // 2026-11-26T05:59:01.123456Z → 05:59:01.123456
            let short = t.get(11..26).unwrap_or(&t);
            writeln!(self.out, "{short} {ev}")
        }
    }
}

impl<W: Write> Sink for Printer<W> {
    fn before(&mut self, input: &Input, model: &Model) {
        if let (Input::Event(ev), Some(_)) = (input, self.filter.pid) {
            self.owner_before = model.event_owner(ev);
        }
    }

    fn feed(&mut self, input: &Input, model: &Model) -> anyhow::Result<Flow> {
        let result = match input {
            Input::Warning(w) => {
                eprintln!("portwatch: warning: {}", w.value);
                Ok(())
            }
            _ if self.closed => Ok(()),
            Input::Event(ev) => {
                let owner = match self.filter.pid {
                    Some(_) => model.event_owner(ev).or(self.owner_before),
                    None => None,
                };
                if self.filter.keep(ev, owner) {
                    self.write(ev)
                } else {
                    Ok(())
                }
            }
            Input::Tick(_) => self.out.flush(),
            _ => Ok(()),
        };
        match result {
            Ok(()) => Ok(Flow::Continue),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(Flow::Stop)
            }
            Err(e) => Err(anyhow::Error::new(e).context("write to stdout")),
        }
    }
}

impl<W: Write> Drop for Printer<W> {
    fn drop(&mut self) {
        if !self.closed {
            let _ = self.out.flush();
        }
    }
}

fn wall_time(ts_ns: u64, offset: i128) -> SystemTime {
    let ns = (ts_ns as i128 + offset).max(0) as u64;
    UNIX_EPOCH + Duration::from_nanos(ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testutil::*;

    /// Feeds `events` through a model and a `--pid` printer; returns the lines printed.
    fn printed(pid: u32, events: &[Event]) -> Vec<String> {
        let mut out = Vec::new();
        {
            let filter = Filter {
                pid: Some(pid),
                port: None,
                netns: None,
            };
            let mut p = Printer::new(filter, false, &mut out);
            let mut m = Model::default();
            for e in events {
                let input = Input::Event(*e);
                p.before(&input, &m);
                m.feed(&input);
                assert_eq!(p.feed(&input, &m).unwrap(), Flow::Continue);
            }
        }
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| l.split_once(' ').unwrap().1.to_string())
            .collect()
    }

    #[test]
    fn pid_follows_the_model_owner_through_softirq_close_and_time_wait() {
        let client = task(100, "client");
        let server = task(200, "server");
        let mut s = Seq::new();
        let (c_local, dst) = (ip_port("10.0.0.1", 40000), "10.0.0.5:80");
        s.listen(server, 0x10, "10.0.0.5:80")
            .connect(client, 0x20, "10.0.0.1", 40000, dst)
            // The accepted side runs under whatever task was on the CPU: here the client.
            .accept(client, 0x30, dst, &c_local)
            .active_close(client, 0x20, 0x21, &c_local, dst)
            .passive_close(swapper(), 0x30, dst, &c_local)
            .advance(60 * SEC)
            .tw_expire(0x21, &c_local, dst)
            .exhausted(client, 0x40, "10.0.0.1", dst);
        let all = s.events.clone();
        let mine = printed(100, &all);
        let theirs = printed(200, &all);
        // The client: connect (2), active close with TIME_WAIT (4), its expiry (2), the failed
        // connect (3); nothing of the server's accepted socket, though it ran as the client.
        assert_eq!(mine.len(), 2 + 4 + 2 + 3, "{mine:#?}");
        assert!(mine.iter().all(|l| !l.contains("LISTEN")), "{mine:#?}");
        assert!(mine.iter().any(|l| l.contains("TW_EXPIRE")), "{mine:#?}");
        assert!(
            mine.iter().any(|l| l.contains("EADDRNOTAVAIL")),
            "{mine:#?}"
        );
        // The server: its listen, and the accepted socket's life (inherited from the listener).
        assert_eq!(theirs.len(), 1 + 2 + 3, "{theirs:#?}");
        assert_eq!(mine.len() + theirs.len(), all.len());
    }
}
