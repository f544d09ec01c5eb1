//! Round-trip properties of every wire codec (issue 17 §4), over generated messages:
//! decode(encode(m)) == m for every encoder/decoder pair, and encode(decode(b)) == b where the
//! format is canonical (pyjson as `json.dumps` writes it, pickle as our encoder writes it, the
//! text protocols with canonical numbers). Kept out of the `wire.rs` files so the codecs can be
//! reshaped without touching these; the fuzz targets in fuzz/ check the same from the other side
//! (arbitrary bytes in).

use peershare::bittrickle::credentials::{Check, Credentials};
use peershare::bittrickle::wire as bt;
use peershare::core::pyjson::{self, Json};
use peershare::fileapp::wire as fa;
use peershare::p2ptracker::{chunk_list, wire as p2p};
use peershare::torrent::pickle::{self, Value};
use peershare::torrent::wire as tw;
use peershare::xfs::latency::LatencyTable;
use peershare::xfs::wire as xfs;
use proptest::prelude::*;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

#[path = "../fuzz/common/json_dump.rs"]
mod json_dump;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Any text, including non-ASCII and control characters.
fn any_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..max).prop_map(|v| v.into_iter().collect())
}

/// A token: no whitespace at all (what space-separated protocols can carry).
fn token(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        any::<char>().prop_filter("no whitespace", |c| !c.is_whitespace()),
        1..max,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn ip_addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u16; 8]>().prop_map(IpAddr::from),
    ]
}

// ---------------------------------------------------------------------------------------------
// P2PTracker++

/// What the tracker accepts as a holder address (issue 14 item 7): an IPv4 literal or an
/// RFC 1123 host name.
fn p2p_ip() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| std::net::Ipv4Addr::from(o).to_string()),
        "[a-z][a-z0-9]{0,15}(\\.[a-z][a-z0-9]{0,15}){0,3}".prop_filter("no keyword inside", |s| {
            !s.contains("local_chunks") && !s.contains("where_chunk")
        }),
    ]
}

fn holder() -> impl Strategy<Value = p2p::Holder> {
    (p2p_ip(), 1u16..).prop_map(|(ip, port)| p2p::Holder { ip, port })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn p2ptracker_local_chunks_round_trips_through_the_segmenter(
        idx in 1..=p2p::MAX_IDX, h in holder(), pad in "[ \r\n]{0,3}",
    ) {
        let text = p2p::encode_local_chunks(idx, &h.ip, h.port);
        let input = format!("{pad}{text}{pad}");
        let segs = p2p::split_segments(input.as_bytes());
        prop_assert_eq!(segs.len(), 1);
        prop_assert_eq!(segs[0], text.as_bytes());
        prop_assert_eq!(
            p2p::parse_request(segs[0]),
            Ok(p2p::Request::LocalChunks { idx, holder: h })
        );
    }

    #[test]
    fn p2ptracker_back_to_back_requests_split_into_each_request(
        idxs in proptest::collection::vec(1..=p2p::MAX_IDX, 1..20),
    ) {
        let input: String = idxs.iter().map(|i| p2p::encode_where_chunk(*i)).collect();
        let parsed: Vec<_> = p2p::split_segments(input.as_bytes())
            .into_iter()
            .map(p2p::parse_request)
            .collect();
        let want: Vec<_> = idxs.iter().map(|&idx| Ok(p2p::Request::WhereChunk { idx })).collect();
        prop_assert_eq!(parsed, want);
    }

    #[test]
    fn p2ptracker_canonical_request_text_is_its_own_encoding(
        idx in "[0-9]{1,7}", ip in p2p_ip(), port in "[0-9]{1,5}",
    ) {
        let text = format!("LOCAL_CHUNKS,{idx},{ip},{port}");
        if let Ok(p2p::Request::LocalChunks { idx: i, holder }) = p2p::parse_request(text.as_bytes()) {
            let again = p2p::encode_local_chunks(i, &holder.ip, holder.port);
            prop_assert_eq!(again == text, !port.starts_with('0'));
        }
    }

    #[test]
    fn p2ptracker_reply_round_trips_every_holder_that_fits(
        idx in 1..=p2p::MAX_IDX, holders in proptest::collection::vec(holder(), 0..60),
    ) {
        let (text, used) = p2p::encode_get_chunk_from(idx, &holders);
        prop_assert!(text.len() <= p2p::MAX_REPLY);
        prop_assert_eq!(
            p2p::parse_reply(text.as_bytes(), idx),
            Some(p2p::Reply::Holders(holders[..used].to_vec()))
        );
        let unknown = p2p::encode_unknown(&idx.to_string());
        prop_assert_eq!(p2p::parse_reply(unknown.as_bytes(), idx), Some(p2p::Reply::Unknown));
        let req = p2p::encode_request_chunk(idx);
        prop_assert_eq!(p2p::parse_request_chunk(req.as_bytes()), Some(idx));
    }

    #[test]
    fn local_chunks_list_renders_and_parses_to_the_same_entries(
        total in 1..=p2p::MAX_IDX,
        picks in proptest::collection::vec(1..=p2p::MAX_IDX, 0..30),
        crlf in any::<bool>(),
    ) {
        let held: Vec<u32> = picks.into_iter().map(|i| (i - 1) % total + 1).collect();
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut text: String = held.iter().map(|i| format!("{i},chunk_{i}{eol}")).collect();
        text.push_str(&format!("{total},LASTCHUNK{eol}"));
        let list = chunk_list::parse(&text).unwrap();
        prop_assert_eq!(list.total, total);
        prop_assert_eq!(list.entries.iter().map(|e| e.idx).collect::<Vec<_>>(), held.clone());
        if !crlf {
            prop_assert_eq!(list.render(), text);
        }
        let again = chunk_list::parse(&list.render()).unwrap();
        prop_assert_eq!(again.entries, list.entries);
    }
}

// ---------------------------------------------------------------------------------------------
// FileApp

/// A name FileApp's wire can carry: non-empty, no comma.
fn fa_name() -> impl Strategy<Value = String> {
    any_text(24).prop_filter("non-empty, no comma", |s| !s.is_empty() && !s.contains(','))
}

/// What an offer may carry since the server checks names (issue 14 item 8): plain file names.
fn fa_file_name() -> impl Strategy<Value = String> {
    fa_name().prop_filter("a plain file name", |s| {
        peershare::core::names::check(s).is_ok()
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fileapp_registration_round_trips_and_is_canonical(name in fa_name(), tcp_port in 1u16..) {
        let r = fa::Registration { name, tcp_port };
        let bytes = fa::encode_registration(&r);
        prop_assert_eq!(fa::parse_registration(&bytes), Ok(r.clone()));
        prop_assert_eq!(fa::encode_registration(&fa::parse_registration(&bytes).unwrap()), bytes);
    }

    #[test]
    fn fileapp_offer_round_trips(names in proptest::collection::vec(fa_file_name(), 0..20)) {
        let bytes = fa::encode_offer(&names);
        let back: Vec<String> = fa::parse_offer(&bytes).unwrap().into_iter().map(Result::unwrap).collect();
        prop_assert_eq!(back, names);
    }

    #[test]
    fn fileapp_table_round_trips_and_table_len_is_exact(
        rows in proptest::collection::vec((fa_name(), fa_name(), any_text(20), any::<u16>()), 0..20),
    ) {
        let mut seen = HashSet::new();
        let rows: Vec<fa::TableRow> = rows
            .into_iter()
            .filter(|(f, o, _, _)| seen.insert((f.clone(), o.clone())))
            .map(|(file, owner, ip, tcp_port)| fa::TableRow { file, owner, ip, tcp_port })
            .collect();
        let bytes = fa::encode_table(&rows);
        prop_assert_eq!(fa::table_len(rows.iter().map(|r| fa::encode_entry(r).len())), bytes.len());
        let (back, skipped) = fa::parse_table(&bytes).unwrap();
        prop_assert!(skipped.is_empty());
        prop_assert_eq!(&back, &rows);
        prop_assert_eq!(fa::encode_table(&back), bytes);
    }

    #[test]
    fn fileapp_request_line_round_trips_and_is_canonical(file in fa_name(), who in fa_name()) {
        let bytes = fa::encode_request(&file, &who);
        prop_assert_eq!(fa::parse_request(&bytes), Ok((file.clone(), who.clone())));
    }
}

// ---------------------------------------------------------------------------------------------
// core::pyjson

fn json_number() -> impl Strategy<Value = String> {
    "-?(0|[1-9][0-9]{0,24})(\\.[0-9]{1,6})?([eE][+-]?[0-9]{1,3})?"
}

fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        json_number().prop_map(Json::Number),
        any_text(16).prop_map(Json::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Json::Array),
            proptest::collection::vec((any_text(8), inner), 0..8).prop_map(|pairs| {
                let mut seen = HashSet::new();
                Json::Object(
                    pairs
                        .into_iter()
                        .filter(|(k, _)| seen.insert(k.clone()))
                        .collect(),
                )
            }),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn pyjson_parses_what_json_dumps_writes_and_dumps_it_back_byte_for_byte(v in json_value()) {
        let text = json_dump::dump(&v);
        prop_assert!(text.is_ascii(), "ensure_ascii output: {}", text);
        let back = pyjson::parse(text.as_bytes(), 16).unwrap();
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(json_dump::dump(&back), text);
    }

    #[test]
    fn pyjson_every_proper_prefix_of_an_object_is_incomplete(v in json_value()) {
        let text = json_dump::dump(&Json::Object(vec![("k".into(), v)]));
        for k in 1..text.len() {
            prop_assert_eq!(
                pyjson::parse(&text.as_bytes()[..k], 16),
                Err(pyjson::JsonError::Incomplete),
                "prefix {:?}", &text[..k]
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// BitTrickle

fn bt_request() -> impl Strategy<Value = bt::Request> {
    let t = || token(16);
    prop_oneof![
        (t(), t(), any::<u16>()).prop_map(|(user, password, tcp_port)| bt::Request::Login {
            user,
            password,
            tcp_port
        }),
        t().prop_map(|user| bt::Request::Heartbeat { user }),
        t().prop_map(|user| bt::Request::Lap { user }),
        (t(), t()).prop_map(|(user, file)| bt::Request::Pub { user, file }),
        (t(), t()).prop_map(|(user, file)| bt::Request::Unp { user, file }),
        t().prop_map(|user| bt::Request::Lpf { user }),
        (t(), t()).prop_map(|(user, substring)| bt::Request::Sch { user, substring }),
        (t(), t()).prop_map(|(user, file)| bt::Request::Get { user, file }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn bittrickle_request_round_trips_and_is_canonical(req in bt_request(), ws in "[ \t\n]{1,3}") {
        let bytes = bt::encode(&req);
        prop_assert_eq!(bt::parse(&bytes), Ok(req.clone()));
        prop_assert_eq!(bt::encode(&bt::parse(&bytes).unwrap()), bytes.clone());
        // Any run of ASCII whitespace separates tokens; the encoding is the canonical form.
        let loose = String::from_utf8(bytes.clone()).unwrap().replace(' ', &ws);
        prop_assert_eq!(bt::encode(&bt::parse(loose.as_bytes()).unwrap()), bytes);
    }

    #[test]
    fn bittrickle_peer_address_reply_round_trips(ip in token(40), port in any::<u16>()) {
        let text = bt::encode_reply(&bt::Reply::PeerAddress { ip: ip.clone(), port });
        prop_assert_eq!(bt::parse_peer_address(&text), Some((ip, port)));
    }

    #[test]
    fn credentials_file_checks_every_written_pair_last_line_winning(
        pairs in proptest::collection::vec((token(8), token(8)), 0..20),
    ) {
        let text: String = pairs.iter().map(|(u, p)| format!("{u} {p}\n")).collect();
        let (creds, bad) = Credentials::parse(&text);
        prop_assert!(bad.is_empty());
        for (user, _) in &pairs {
            let last = &pairs.iter().rev().find(|(u, _)| u == user).unwrap().1;
            prop_assert_eq!(creds.check(user, last), Check::Valid);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// BitTorrent-Python: pickle and messages

fn pickle_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any_text(16).prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Value::Bytes),
    ];
    let nested = leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Tuple),
            proptest::collection::vec((any_text(6).prop_map(Value::Str), inner), 0..6)
                .prop_map(Value::Dict),
        ]
    });
    proptest::collection::vec((any_text(10), nested), 0..8)
        .prop_map(|items| Value::Dict(items.into_iter().map(|(k, v)| (Value::Str(k), v)).collect()))
}

fn torrent_message() -> impl Strategy<Value = tw::Message> {
    use tw::{Message, Mode, Owner};
    let mode = prop_oneof![
        Just(Mode::Register),
        Just(Mode::Own),
        Just(Mode::Need),
        Just(Mode::Update),
        Just(Mode::Exit)
    ];
    let owner = (any::<i64>(), any_text(20), any::<i64>(), any::<i64>()).prop_map(
        |(node_id, ip, port, send_freq)| Owner {
            node_id,
            ip,
            port,
            send_freq,
        },
    );
    prop_oneof![
        (any::<i64>(), any_text(30), mode).prop_map(|(node_id, filename, mode)| {
            Message::Node2Tracker {
                node_id,
                filename,
                mode,
            }
        }),
        (
            any::<i64>(),
            proptest::collection::vec(owner, 0..10),
            any_text(30)
        )
            .prop_map(
                |(dest_node_id, search_result, filename)| Message::Tracker2Node {
                    dest_node_id,
                    search_result,
                    filename
                }
            ),
        (any::<i64>(), any::<i64>(), any_text(30), any::<i64>()).prop_map(
            |(src_node_id, dest_node_id, filename, size)| Message::Node2Node {
                src_node_id,
                dest_node_id,
                filename,
                size
            }
        ),
        (
            any::<i64>(),
            any::<i64>(),
            any_text(30),
            any::<(i64, i64)>(),
            any::<i64>(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..2000)),
        )
            .prop_map(|(src_node_id, dest_node_id, filename, range, idx, chunk)| {
                Message::ChunkSharing {
                    src_node_id,
                    dest_node_id,
                    filename,
                    range,
                    idx,
                    chunk,
                }
            }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn pickle_decodes_what_it_encodes_and_the_encoding_is_a_fixed_point(v in pickle_value()) {
        let bytes = pickle::encode(&v);
        let back = pickle::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(pickle::encode(&back), bytes);
    }

    #[test]
    fn torrent_message_round_trips(m in torrent_message()) {
        let bytes = tw::encode(&m);
        prop_assert_eq!(tw::parse(&bytes), Ok(m.clone()));
        if let tw::Message::ChunkSharing { src_node_id, dest_node_id, filename, range, idx, chunk: Some(c) } = &m {
            let piece = tw::encode_piece(*src_node_id, *dest_node_id, filename, *range, *idx, c);
            prop_assert_eq!(piece, bytes);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Simple xFS

fn xfs_filelist() -> impl Strategy<Value = xfs::FileList> {
    let file = (any_text(20), any::<u64>(), "[0-9a-f]{32}").prop_map(|(name, size, hash_val)| {
        xfs::FileEntry {
            name,
            size,
            hash_val,
        }
    });
    (
        proptest::collection::vec(file, 0..5),
        any_text(12),
        proptest::option::of(any::<u16>()),
        proptest::option::of(any_text(15)),
    )
        .prop_map(|(files, node_id, node_port, node_ip)| xfs::FileList {
            files,
            node_id,
            node_port,
            node_ip,
        })
}

fn xfs_node() -> impl Strategy<Value = xfs::NodeInfo> {
    (
        any_text(12),
        any::<i64>(),
        any_text(15),
        any::<u16>(),
        proptest::option::of(any::<u64>()),
        xfs_filelist(),
    )
        .prop_map(|(id, status, ip, port, load, filelist)| xfs::NodeInfo {
            id,
            status,
            ip,
            port,
            load,
            filelist,
        })
}

fn xfs_message() -> impl Strategy<Value = xfs::Message> {
    use xfs::Message;
    prop_oneof![
        xfs_node().prop_map(Message::Node),
        xfs_filelist().prop_map(Message::FileList),
        proptest::collection::vec(xfs_node(), 0..4).prop_map(Message::NodeList),
        Just(Message::UpdateList),
        Just(Message::GetLoad),
        proptest::option::of(token(20)).prop_map(Message::Find),
        (token(20), ip_addr(), 1u16..).prop_map(|(name, ip, port)| Message::Send {
            name,
            ip,
            port
        }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn xfs_message_round_trips_and_the_encoding_is_a_fixed_point(m in xfs_message()) {
        let bytes = xfs::encode(&m);
        let back = xfs::parse(&bytes).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(xfs::encode(&back), bytes.clone());
        if bytes.first() == Some(&b'{') {
            prop_assert_eq!(xfs::json_complete(&bytes), Ok(true));
            prop_assert_eq!(xfs::json_complete(&bytes[..bytes.len() - 1]), Ok(false));
        }
    }

    #[test]
    fn latency_table_reads_back_every_written_line(
        entries in proptest::collection::vec((ip_addr(), any::<u16>(), ip_addr(), any::<u16>(), any::<u64>()), 0..20),
    ) {
        let text: String = entries
            .iter()
            .map(|(a, p, b, q, ms)| format!("{a} {p} {b} {q} {ms}\n"))
            .collect();
        let (table, bad) = LatencyTable::parse(&text);
        prop_assert!(bad.is_empty());
        let got: Vec<_> = table.entries.iter().map(|e| (e.src, e.dst, e.ms)).collect();
        let want: Vec<_> = entries
            .iter()
            .map(|(a, p, b, q, ms)| (SocketAddr::new(*a, *p), SocketAddr::new(*b, *q), *ms))
            .collect();
        prop_assert_eq!(got, want);
    }
}

// ---------------------------------------------------------------------------------------------
// BitTorrent (BEP 3, BEP 15)

use peershare::bt::announce::{Announce, AnnounceReply, Event, PeerEntry};
use peershare::bt::bencode::{self as benc, Owned};
use peershare::bt::udp_tracker::{self as udpt, UdpReply, UdpRequest};
use peershare::bt::wire as pw;

fn bencode_value() -> impl Strategy<Value = Owned> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Owned::Int),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Owned::Bytes),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Owned::List),
            proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 0..12),
                inner,
                0..6
            )
            .prop_map(Owned::Dict),
        ]
    })
}

/// The owned form of a decoded value.
fn owned(v: &benc::Value<'_>) -> Owned {
    match v {
        benc::Value::Int(n) => Owned::Int(*n),
        benc::Value::Bytes(b) => Owned::Bytes(b.to_vec()),
        benc::Value::List(items) => Owned::List(items.iter().map(owned).collect()),
        benc::Value::Dict(entries) => Owned::Dict(
            entries
                .iter()
                .map(|e| (e.key.to_vec(), owned(&e.value)))
                .collect(),
        ),
    }
}

fn peer_message() -> impl Strategy<Value = pw::Message> {
    prop_oneof![
        Just(pw::Message::KeepAlive),
        Just(pw::Message::Choke),
        Just(pw::Message::Unchoke),
        Just(pw::Message::Interested),
        Just(pw::Message::NotInterested),
        any::<u32>().prop_map(pw::Message::Have),
        proptest::collection::vec(any::<u8>(), 1..64).prop_map(pw::Message::Bitfield),
        (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(index, begin, length)| {
            pw::Message::Request {
                index,
                begin,
                length,
            }
        }),
        (
            any::<u32>(),
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..200)
        )
            .prop_map(|(index, begin, data)| pw::Message::Piece { index, begin, data }),
        (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(index, begin, length)| {
            pw::Message::Cancel {
                index,
                begin,
                length,
            }
        }),
        any::<u16>().prop_map(pw::Message::Port),
    ]
}

fn announce() -> impl Strategy<Value = Announce> {
    let event = prop_oneof![
        Just(Event::None),
        Just(Event::Started),
        Just(Event::Completed),
        Just(Event::Stopped)
    ];
    (
        any::<[u8; 20]>(),
        any::<[u8; 20]>(),
        any::<u16>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        event,
        0u32..200,
    )
        .prop_map(
            |(info_hash, peer_id, port, uploaded, downloaded, left, event, numwant)| Announce {
                info_hash,
                peer_id,
                port,
                uploaded,
                downloaded,
                left,
                event,
                compact: true,
                numwant,
            },
        )
}

fn peers() -> impl Strategy<Value = Vec<PeerEntry>> {
    proptest::collection::vec(
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| PeerEntry {
            addr: std::net::SocketAddrV4::new(ip.into(), port),
            peer_id: None,
        }),
        0..20,
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn bencode_round_trips_and_decoding_accepts_only_what_encoding_writes(v in bencode_value()) {
        let bytes = benc::encode(&v);
        let back = benc::decode(&bytes).unwrap();
        prop_assert_eq!(owned(&back), v);
    }

    #[test]
    fn peer_wire_messages_round_trip(m in peer_message()) {
        let bytes = pw::encode(&m);
        prop_assert_eq!(u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize, bytes.len() - 4);
        prop_assert_eq!(pw::parse(&bytes[4..]), Ok(m));
    }

    #[test]
    fn udp_tracker_requests_and_replies_round_trip(
        a in announce(),
        peers in peers(),
        tid in any::<u32>(),
        connection_id in any::<u64>(),
        interval in any::<u32>(),
        seeds in any::<u32>(),
        leechers in any::<u32>(),
    ) {
        for req in [
            UdpRequest::Connect { tid },
            UdpRequest::Announce { connection_id, tid, announce: a.clone() },
        ] {
            prop_assert_eq!(udpt::parse_request(&udpt::encode_request(&req)), Ok(req));
        }
        let reply = AnnounceReply { interval, complete: seeds, incomplete: leechers, peers };
        for r in [
            UdpReply::Connect { tid, connection_id },
            UdpReply::Announce { tid, reply },
        ] {
            prop_assert_eq!(udpt::parse_reply(&udpt::encode_reply(&r)), Ok(r));
        }
    }
}
