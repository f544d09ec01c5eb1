#!/usr/bin/env python3
"""Writes fuzz/corpus/<target>/seed-N from the unit-test vectors (run once; files committed)."""
import os, struct

HERE = os.path.dirname(os.path.abspath(__file__))

def put(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for i, s in enumerate(seeds):
        if isinstance(s, str):
            s = s.encode()
        with open(os.path.join(d, f"seed-{i:02d}"), "wb") as f:
            f.write(s)

put("p2ptracker_segments", [
    b"LOCAL_CHUNKS,2,localhost,7003\r\n", b"  LOCAL_CHUNKS,2,localhost,7003  ", b"WHERE_CHUNK,3",
    b"LOCAL_CHUNKS,2,localhost,7003WHERE_CHUNK,3\nWHERE_CHUNK,4WHERE_CHUNK,5\n\n",
    b"LOCAL_CHUNKS,1,localhost", b"LOCAL_CHUNKS,01,localhost,7000", b"LOCAL_CHUNKS,1,,7000",
    b"WHERE_CHUNK,1,2", b"\xff\xfeWHERE", b"WHERE_CHUNK,\xc3\xa9", b"WHERE_CHUNK,-5", b"WHERE_CHUNK,",
    b"\n\r\n   \n", b"LOCAL_CHUNKS,1000000,10.0.0.1,65535",
])
def asked(i):
    return struct.pack("<H", i // 16) + bytes([i % 16])
put("p2ptracker_reply", [
    asked(3) + b"GET_CHUNK_FROM,3,localhost,7001,localhost,7002",
    asked(3) + b"CHUNK_LOCATION_UNKNOWN,3\r\n", asked(3) + b"GET_CHUNK_FROM,31,localhost,7001",
    asked(3) + b"GET_CHUNK_FROM,3,localhost,notaport,localhost,7002,dangling",
    asked(5) + b"REQUEST_CHUNK,5\r\n", asked(1) + b"REQUEST_CHUNK,../../etc/passwd", asked(1) + b"garbage",
])
put("local_chunks", [
    "1,chunk_1\n2,chunk_2\n3,LASTCHUNK\n", "1,chunk_1\r\n\r\n 3 , LASTCHUNK \r\n",
    "3,LASTCHUNK\n1,chunk_1\n2,../etc/passwd\n", "5,chunk_5\n2,LASTCHUNK\n2,LASTCHUNK\n", "x,LASTCHUNK\n",
    "1,chunk_1\n1,chunk_1_again\n1000000,LASTCHUNK",
])
put("fileapp_wire", [
    "alice,5001", "alice,0", "a,b,5001", ",5001", '["a.txt", "b.txt"]', '["a,b", 5, "", null]',
    '{"a.txt,alice": ["127.0.0.1", 5001], "b.txt,bob": ["10.0.0.2", 6000]}',
    '{"bad": ["127.0.0.1", 1], "a,b": [1, 2], "c,d": ["ip", 70000]}', "a.txt,bob", "ACK", "DEREG",
    '{"\\u00e9\\ud83d\\ude00,x": ["::1", 1]}',
])
put("pyjson", [
    b"\x10" + s for s in [
        b'{"a": 1, "b": [true, false, null], "c": "\\u00e9"}', b'[1.5e-3, -0, 12345678901234567890]',
        b'"\\ud800"', b'{"a": 1, "a": 2}', b"[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]", b'{"a": ', b"  7 ",
        b'"\\"\\\\\\/\\b\\f\\n\\r\\t"', b"[1,]", b"NaN",
    ]
])
put("bittrickle_wire", [
    "login hans falcon*solo 5001", "heartbeat hans", "lap hans", "pub hans a.txt", "unp hans a.txt",
    "lpf hans", "sch hans txt", "get hans a.txt", "login hans x 70000", "  get\thans\na.txt  ",
    "200 127.0.0.1 5001", b"\xff\xfe", "",
])
put("credentials", [
    "hans falcon*solo\nyoda wise@!man\nvader sithlord**\n", "a b c\n\n  x   y  \r\nx z\n", b"\xffuser pw\n",
])
pickles = []
with open(os.path.join(HERE, "..", "tests", "fixtures", "torrent", "pickles.txt")) as f:
    for line in f:
        parts = line.split()
        if len(parts) >= 4:
            try:
                pickles.append(bytes.fromhex(parts[-1]))
            except ValueError:
                pass
pickles = pickles[::3][:25]
put("pickle", pickles)
put("torrent_wire", pickles)
put("xfs_wire", [
    "updatelist", "getload", "find a.txt", "find", "send a.txt 127.0.0.1 5001", "send a.txt nohost 5001",
    '{"files": [{"name": "a.txt", "size": 3, "hash_val": "900150983cd24fb0d6963f7d28e17f72", "type": "file"}], '
    '"node_id": "n1", "node_port": null, "node_ip": null, "type": "filelist"}',
    '{"id": "n1", "status": 1, "ip": "127.0.0.1", "port": 5001, "load": 0, "filelist": {"files": [], '
    '"node_id": "n1", "node_port": 5001, "node_ip": "127.0.0.1", "type": "filelist"}, "type": "node"}',
    '{"nodes": [], "type": "nodelist"}', '{"type": "bogus"}', '{"files": [', b"\xff",
])
put("xfs_framing", [
    '{"nodes": [], "type": "nodelist"}', '{"nodes": [], "type": "nodelist"}   ', '{"a": "}\\"{"}',
    '{"a": [1, 2', '{"a": 1}}', '{"a": 1} {"b": 2}',
])
put("latency", [
    "127.0.0.1 5001 127.0.0.1 5002 120\n127.0.0.1 5001 127.0.0.1 5003 300\n",
    "127.0.0.1 5001 127.0.0.1 5002 20\nlocalhost 5001 127.0.0.1 5002 99\n\n# comment\n127.0.0.1 5002 127.0.0.1 5001 30 extra\n",
    "127.0.0.1 70000 127.0.0.1 5003 5\n127.0.0.1 5001 127.0.0.1 5003 -4\n::1 1 ::1 2 3\n",
])
