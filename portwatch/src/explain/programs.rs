//! Remedies in the culprit's own words: when the process behind a pool is a program that
//! operators configure (nginx, HAProxy, Envoy, curl, a language runtime), its finding names
//! that program's knob, with the documentation that describes it.
//!
//! This is data: adding a program is a row of [`PROGRAMS`], and `docs/programs.md` lists the
//! same rows for people (a unit test keeps the two in step). A program is recognised by the
//! file it executes (`/proc/PID/exe`, learned through the model's input: `model/exes.rs`)
//! first, else by the name the kernel gives its task (`comm`: the thread's name, which
//! programs set freely); a row lists every name its executables and processes go by.
//! Language runtimes (python3, node, java) only say *which* library knob to look for: the
//! process does not reveal which HTTP library it uses.

use super::{Cause, Remedy, remedies::r};

/// One program and its knobs.
pub(super) struct Program {
    /// Its name, as docs/programs.md lists it (read by the test that keeps the two in step).
    #[cfg_attr(not(test), allow(dead_code))]
    pub name: &'static str,
    /// The names its executables and tasks (`comm`) go by.
    pub comms: &'static [&'static str],
    pub knobs: &'static [Knob],
}

/// One knob of a program, for one cause.
pub(super) struct Knob {
    pub cause: Cause,
    /// Remedy id (`<program>_<knob>`).
    pub id: &'static str,
    pub action: &'static str,
    pub why: &'static str,
    /// The program's own documentation of the knob.
    pub source: &'static str,
}

pub(super) const PROGRAMS: &[Program] = &[
    Program {
        name: "nginx",
        comms: &["nginx"],
        knobs: &[
            Knob {
                cause: Cause::TimeWaitChurn,
                id: "nginx_upstream_keepalive",
                action: "In nginx, keep upstream connections open: `keepalive 32;` in the \
                         `upstream` block, and `proxy_http_version 1.1;` with \
                         `proxy_set_header Connection \"\";` where it proxies to it",
                why: "Without them nginx speaks HTTP/1.0 to the upstream and closes each \
                      connection after one request, so every request leaves a port in \
                      TIME_WAIT for 60 s; with them each worker keeps up to 32 idle \
                      connections that carry the next requests.",
                source: "https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive",
            },
            Knob {
                cause: Cause::Concurrency,
                id: "nginx_upstream_max_conns",
                action: "In nginx, bound the connections to each upstream server with \
                         `server ADDRESS max_conns=N;` in the `upstream` block, or list more \
                         upstream server addresses",
                why: "Every upstream address is a pool of its own; max_conns stops nginx \
                      opening more than N connections to one server at once.",
                source: "https://nginx.org/en/docs/http/ngx_http_upstream_module.html#max_conns",
            },
        ],
    },
    Program {
        name: "HAProxy",
        comms: &["haproxy"],
        knobs: &[
            Knob {
                cause: Cause::TimeWaitChurn,
                id: "haproxy_http_reuse",
                action: "In HAProxy, let server connections carry many requests: drop \
                         `option http-server-close` / `option httpclose` from the backend \
                         and keep `http-reuse safe` (the default) or set `http-reuse \
                         aggressive`",
                why: "A server connection closed after every response leaves its port in \
                      TIME_WAIT for 60 s on this side; reused idle connections do not.",
                source: "https://docs.haproxy.org/2.6/configuration.html#4-http-reuse",
            },
            Knob {
                cause: Cause::TimeWaitChurn,
                id: "haproxy_source_ranges",
                action: "In HAProxy, give each `server` line its own source address and port \
                         range (`source 10.0.0.11:1025-65000`), or add `server` lines on more \
                         addresses",
                why: "Each (source address, server address) pair is a separate pool of up to \
                      64,511 ports that HAProxy manages itself, beyond \
                      ip_local_port_range.",
                source: "https://docs.haproxy.org/2.6/configuration.html#5.2-source",
            },
            Knob {
                cause: Cause::Concurrency,
                id: "haproxy_source_ranges",
                action: "In HAProxy, give each `server` line its own source address and port \
                         range (`source 10.0.0.11:1025-65000`), or add `server` lines on more \
                         addresses; `maxconn N` on a `server` line queues requests beyond N",
                why: "Each (source address, server address) pair is a separate pool of up to \
                      64,511 ports; maxconn bounds how many one server gets at once.",
                source: "https://docs.haproxy.org/2.6/configuration.html#5.2-source",
            },
        ],
    },
    Program {
        name: "Envoy",
        comms: &["envoy"],
        knobs: &[
            Knob {
                cause: Cause::TimeWaitChurn,
                id: "envoy_upstream_reuse",
                action: "In Envoy, keep upstream connections: no `max_requests_per_connection: \
                         1` or short `idle_timeout` in the cluster's \
                         `common_http_protocol_options`; HTTP/2 to the upstream multiplexes \
                         requests over a few connections",
                why: "Each upstream connection Envoy closes first holds a port 60 s in \
                      TIME_WAIT; connections that live for many requests do not.",
                source: "https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/core/v3/protocol.proto",
            },
            Knob {
                cause: Cause::Concurrency,
                id: "envoy_max_connections",
                action: "In Envoy, bound the cluster's connections with \
                         `circuit_breakers.thresholds.max_connections`",
                why: "The circuit breaker caps connections to the cluster's hosts; requests \
                      beyond it queue or fail fast instead of taking ports.",
                source: "https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/circuit_breaking",
            },
        ],
    },
    Program {
        name: "curl",
        comms: &["curl"],
        knobs: &[Knob {
            cause: Cause::TimeWaitChurn,
            id: "curl_one_invocation",
            action: "Give one curl many URLs (on its command line, with `--next`, or as \
                     `url = …` lines in a `--config` file) instead of a loop of curl runs",
            why: "curl reuses a connection only within one invocation; each run of a loop \
                  opens and closes its own, leaving a port in TIME_WAIT for 60 s.",
            source: "https://everything.curl.dev/transfers/conn/reuse.html",
        }],
    },
    Program {
        name: "wrk",
        comms: &["wrk"],
        knobs: &[Knob {
            cause: Cause::TimeWaitChurn,
            id: "wrk_keep_alive",
            action: "Run wrk without `-H \"Connection: close\"`: it then keeps its `-c` \
                     connections open for the whole run",
            why: "Closing after every request measures connection set-up, and holds a port \
                  in TIME_WAIT for 60 s per request.",
            source: "https://github.com/wg/wrk#command-line-options",
        }],
    },
    Program {
        name: "Python",
        comms: &["python3", "python", "gunicorn", "uwsgi", "celery"],
        knobs: &[Knob {
            cause: Cause::TimeWaitChurn,
            id: "python_session",
            action: "If it uses requests, make its calls through one `requests.Session()`; \
                     with urllib3, one `PoolManager`; with http.client, one `HTTPConnection` \
                     per host reused; with aiohttp, one `ClientSession`",
            why: "`requests.get()` and friends open a new connection per call; a session \
                  keeps a pool of connections per host.",
            source: "https://requests.readthedocs.io/en/latest/user/advanced/#session-objects",
        }],
    },
    Program {
        name: "Node.js",
        comms: &["node", "nodejs"],
        knobs: &[Knob {
            cause: Cause::TimeWaitChurn,
            id: "node_keepalive_agent",
            action: "Use an `http.Agent({ keepAlive: true, maxSockets: N })` for its outbound \
                     requests (the default agent keeps alive only since Node.js 19)",
            why: "An agent without keepAlive closes each socket after its request.",
            source: "https://nodejs.org/api/http.html#new-agentoptions",
        }],
    },
    Program {
        name: "Java",
        comms: &["java"],
        knobs: &[Knob {
            cause: Cause::TimeWaitChurn,
            id: "java_shared_client",
            action: "Share one HTTP client for the whole application (one \
                     `java.net.http.HttpClient`, or one pooled Apache HttpClient / OkHttp \
                     client) instead of one per request",
            why: "Each client has its own connection pool; a client per request is a \
                  connection per request.",
            source: "https://docs.oracle.com/en/java/javase/21/docs/api/java.net.http/java/net/http/HttpClient.html",
        }],
    },
];

/// The program a name (an executable's file name or a task's `comm`) belongs to: a row's
/// name, or one followed by a version (`python3.11`, `node20`).
pub(super) fn program(name: &str) -> Option<&'static Program> {
    let versioned = |n: &str| {
        name.strip_prefix(n)
            .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '.'))
    };
    PROGRAMS
        .iter()
        .find(|p| p.comms.iter().any(|n| versioned(n)))
}

/// The knobs for `cause` of the program a process runs, as remedies that help: recognised
/// by its executable (`exe`) first, whatever its thread is called, else by its `comm`.
pub(super) fn remedies(comm: Option<&str>, exe: Option<&str>, cause: Cause) -> Vec<Remedy> {
    let Some(p) = exe.and_then(program).or_else(|| comm.and_then(program)) else {
        return Vec::new();
    };
    p.knobs
        .iter()
        .filter(|k| k.cause == cause)
        .map(|k| {
            let mut rem = r(k.id, true, k.action, k.why);
            rem.source = Some(k.source.to_string());
            rem
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NGINX_UPSTREAM: &str = "https://nginx.org/en/docs/http/ngx_http_upstream_module.html";
    const HAPROXY: &str = "https://docs.haproxy.org/2.6/configuration.html";

    #[test]
    fn nginx_churn_names_upstream_keepalive_with_its_source() {
        let got = remedies(Some("nginx"), None, Cause::TimeWaitChurn);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, "nginx_upstream_keepalive");
        assert!(got[0].helps && got[0].action.contains("keepalive 32;"));
        assert!(
            got[0]
                .source
                .as_deref()
                .unwrap()
                .starts_with(NGINX_UPSTREAM)
        );
        let hap = remedies(Some("haproxy"), None, Cause::Concurrency);
        assert!(hap[0].source.as_deref().unwrap().starts_with(HAPROXY));
    }

    #[test]
    fn unknown_programs_and_other_causes_get_nothing() {
        assert!(remedies(Some("my-client"), None, Cause::TimeWaitChurn).is_empty());
        assert!(remedies(None, None, Cause::TimeWaitChurn).is_empty());
        assert!(remedies(Some("nginx"), None, Cause::CloseWaitLeak).is_empty());
        // A name that only starts like a program's is not that program.
        assert!(remedies(Some("nginx-exporter"), None, Cause::TimeWaitChurn).is_empty());
    }

    /// The executable wins over the thread's name: Envoy's workers are `wrk:worker_0`, a
    /// Python service may rename itself; `/usr/bin/python3.11` is Python.
    #[test]
    fn programs_are_recognised_by_their_executable_first() {
        let envoy = remedies(Some("wrk:worker_0"), Some("envoy"), Cause::TimeWaitChurn);
        assert_eq!(envoy[0].id, "envoy_upstream_reuse");
        let py = remedies(
            Some("billing-sync"),
            Some("python3.11"),
            Cause::TimeWaitChurn,
        );
        assert_eq!(py[0].id, "python_session");
        // `wrk` the load generator is not Envoy's worker thread.
        let wrk = remedies(Some("wrk"), Some("wrk"), Cause::TimeWaitChurn);
        assert!(wrk.iter().all(|r| !r.id.starts_with("envoy")), "{wrk:?}");
        // An unknown executable leaves the comm to decide.
        let ngx = remedies(Some("nginx"), Some("openresty"), Cause::TimeWaitChurn);
        assert_eq!(ngx[0].id, "nginx_upstream_keepalive");
    }

    #[test]
    fn rows_are_well_formed() {
        let mut ids = std::collections::BTreeSet::new();
        for p in PROGRAMS {
            assert!(!p.comms.is_empty(), "{}", p.name);
            for c in p.comms {
                assert!(c.len() <= 15, "a comm is at most 15 bytes: {c}");
                assert_eq!(program(c).unwrap().name, p.name, "{c} in two rows");
            }
            for k in p.knobs {
                assert!(k.source.starts_with("https://"), "{}", k.id);
                assert!(k.why.ends_with('.'), "{}", k.id);
                ids.insert(k.id);
            }
        }
        assert!(ids.len() >= 9, "{ids:?}");
    }

    /// docs/programs.md lists every row: a program added here is documented there.
    #[test]
    fn docs_list_every_knob() {
        let doc = include_str!("../../../docs/programs.md");
        for p in PROGRAMS {
            assert!(
                doc.contains(&format!("\n| {} |", p.name)),
                "docs/programs.md lacks {}",
                p.name
            );
            for k in p.knobs {
                assert!(doc.contains(k.id), "docs/programs.md lacks {}", k.id);
                assert!(
                    doc.contains(k.source),
                    "docs/programs.md lacks {}",
                    k.source
                );
            }
            for c in p.comms {
                assert!(
                    doc.contains(&format!("`{c}`")),
                    "docs/programs.md lacks `{c}`"
                );
            }
        }
    }
}
