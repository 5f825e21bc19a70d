"""Limits and defaults, each a named constant with the reason for its value."""

from __future__ import annotations

# --- io -------------------------------------------------------------------------------------
# Bytes read from the file per batch. Large enough that per-batch numpy overhead is amortised
# over tens of thousands of frames, small enough that memory does not follow capture size.
READ_CHUNK_BYTES = 8 * 1024 * 1024

# A record claiming more than this many captured bytes is treated as corrupt. libpcap's own
# MAXIMUM_SNAPLEN is 262144; 16 MiB leaves room for odd link types (e.g. USB) without letting a
# garbage length make us allocate gigabytes.
MAX_RECORD_BYTES = 16 * 1024 * 1024

# pcapng blocks larger than this are corrupt for the same reason.
MAX_BLOCK_BYTES = 64 * 1024 * 1024

# After a corrupt pcap record header, how far ahead to search for a plausible next record
# before giving up on the rest of the file.
RESYNC_WINDOW_BYTES = 1024 * 1024

# --- decode ---------------------------------------------------------------------------------
# Nested VLAN tags followed before giving up (QinQ is 2; 4 covers every deployment we know).
MAX_VLAN_TAGS = 4

# IPv6 extension headers followed before giving up (RFC 8200 allows any number, real traffic
# uses at most a few; a long chain is itself suspicious).
MAX_IPV6_EXT_HEADERS = 8

# IPv4 fragments: a datagram whose fragments are incomplete after this many seconds of capture
# time is reported as an anomaly and dropped (Linux ipfrag_time is 30 s).
IP_FRAG_TIMEOUT_S = 30.0
# Pending fragmented datagrams kept at once; beyond that the oldest is evicted (and reported),
# so a fragment flood cannot grow memory without bound.
MAX_PENDING_FRAGMENTS = 4096

# --- flow -----------------------------------------------------------------------------------
# Zeek's tcp_inactivity_timeout: a connection silent this long is finalised ("idle timeout").
TCP_IDLE_TIMEOUT_S = 300.0
# After both FINs (or a RST) Zeek keeps the connection for tcp_close_delay / tcp_reset_delay
# (5 s) so that trailing ACKs and retransmitted FINs are still counted to it.
TCP_CLOSE_LINGER_S = 5.0
# How often (in capture seconds) the flow table is swept for idle and closed connections.
SWEEP_INTERVAL_S = 10.0
# Half-open flows (only SYNs seen, nothing answered yet) kept at once, as Suricata bounds its
# flow table (flow.memcap, emergency mode): past it the oldest are finalised early, their rows
# flagged ``evicted``. Ordinary traffic has a few hundred handshakes in flight at most (the
# benchmark's 60 new connections/s at 100 ms RTT: ~6); a SYN scan or flood has one per SYN. A
# half-open flow costs ~0.5 KB (pcapan.flow.halfopen), so 100,000 is ~50 MB; a flood of 100,000
# SYNs a second still leaves a real handshake a second to complete before its SYN is evicted.
# 0: no bound.
MAX_HALF_OPEN_FLOWS = 100_000
# SYN-only flows new in one batch before they go to the half-open table (while it is empty).
# Ordinary traffic has a few (handshakes cut by the batch's end: ~4 in the benchmark's 9,000-frame
# batches); taking them in costs ~3% of the analysis in replays for nothing. A scan or flood
# brings hundreds per batch. Below this, a slow scan (under 64 SYNs/s in pcapan live's 0.5 s
# batches) keeps full connections, ended by the idle timeout: at most ~19,000 at once.
HALF_OPEN_MIN_BATCH = 32

# Out-of-order bytes buffered per direction before the reassembler declares the missing range
# a gap and moves on. 4 MiB exceeds a 64 KiB window scaled by 2^6, the largest window seen on
# ordinary paths, so real reordering is never mistaken for loss.
MAX_OOO_BYTES_PER_DIRECTION = 4 * 1024 * 1024
# Out-of-order segments buffered per direction (bounds the bookkeeping, not just the bytes).
MAX_OOO_SEGMENTS_PER_DIRECTION = 2048

# Bytes of each direction's stream shown to content detection before it gives up. A request
# line or a TLS record header is decided within the first 16 bytes; 64 leaves slack.
DETECT_BYTES = 64

# Bytes of the most recently delivered data kept per direction (only for streams a parser
# reads) so that a retransmission whose bytes differ from the original is noticed. Most
# retransmissions repeat one of the last few segments.
RETX_COMPARE_TAIL_BYTES = 4096

# Distinct timestamp-free TCP option strings whose parse is cached (they repeat verbatim: one
# per OS, MSS and window-scale combination, tens in a real capture). The bound only matters
# for garbage or crafted options, which would otherwise grow the cache without end.
TCP_OPTIONS_CACHE_ENTRIES = 4096

# Fragments (stored pieces) kept for one pending datagram. A maximum-size datagram cut at
# IPv4's minimum MTU (68 bytes, 48 payload bytes a fragment) needs 1366; more than 2048 is a
# tiny-fragment attack, and the datagram is dropped (reported) so one key cannot cost
# unbounded work or memory.
MAX_FRAGMENTS_PER_DATAGRAM = 2048
# Bytes (payload plus bookkeeping) held by all pending fragmented datagrams together; beyond
# it the oldest are evicted (reported). Linux drops at 4 MiB (ipfrag_high_thresh) per host; a
# passive observer sees many hosts, so 32 MiB, which still bounds memory under a flood.
MAX_PENDING_FRAGMENT_BYTES = 32 * 1024 * 1024

# --- proto: HTTP/1.x --------------------------------------------------------------------------
# Bytes of one header section (start line + fields, or a trailer section) buffered before the
# message is declared malformed. Servers reject far less (nginx: 4 x 8 KiB buffers, Apache
# 100 fields x 8190 bytes, Node.js 16 KiB), so a real message never reaches 64 KiB; the bound
# is what keeps a stream of garbage without a blank line from growing memory.
HTTP_MAX_HEADER_BYTES = 64 * 1024
# Header fields kept per section. Apache's LimitRequestFields is 100; the rest of an oversized
# section is counted as an anomaly and dropped so that one message cannot cost unbounded work.
HTTP_MAX_HEADER_FIELDS = 256
# Requests waiting for their response on one connection. Pipelining clients keep a handful
# outstanding (the pipelined sample has 3); beyond this the oldest is reported unanswered so a
# request flood that is never answered cannot grow the pairing queue without end.
HTTP_MAX_PENDING_REQUESTS = 128
# Bytes a client sends after an Upgrade or CONNECT request, held until the response says whether
# the tunnel opened (an optimistic TLS ClientHello, even a post-quantum one, is a few KiB).
HTTP_MAX_PAUSED_BYTES = 64 * 1024
# A chunk-size line (size plus extensions) longer than this is malformed; real ones are < 100.
HTTP_MAX_CHUNK_LINE_BYTES = 4096
# While resynchronising, at most this much of an unfinished line is kept to find the next
# request or status line (nginx's default request-line buffer is 1 KiB, its large one 8 KiB).
HTTP_RESYNC_KEEP_BYTES = 8 * 1024
# A server that answers an HTTP/0.9 simple-request with a status line anyway has its line quoted
# in the anomaly; the reply waits for that line at most this long (real status lines are
# "HTTP/1.1 NNN reason", far shorter), so a reply without a newline cannot be held back.
HTTP09_STATUS_LINE_PEEK = 256

# --- proto: TLS ------------------------------------------------------------------------------
# Largest TLS record body accepted (RFC 5246 6.2.3: TLSCiphertext.length <= 2^14 + 2048). A
# longer length means the stream is not (or no longer) TLS, and parsing that direction stops.
MAX_TLS_RECORD_BYTES = 2**14 + 2048
# Largest handshake message gathered across records. Certificate chains are the big ones:
# OpenSSL refuses chains over 100 KiB by default (max_cert_list), but Zeek's fragmented-handshake
# test trace carries a 332 KiB Certificate message; 1 MiB accepts such chains while a bogus
# 24-bit length cannot make us buffer 16 MiB.
MAX_TLS_HANDSHAKE_MESSAGE_BYTES = 1024 * 1024
# Certificates kept from one Certificate message (real chains have 2-4; the rest are counted).
MAX_TLS_CERTS_PER_CHAIN = 16
# Distinct ClientHello shapes (and leaf certificates) whose fingerprints (parsed fields) are
# remembered: a capture's clients and servers repeat a few of each; the bound keeps memory flat
# on captures with many distinct ones.
FINGERPRINT_CACHE_SIZE = 4096

# Application-data exchanges (a client flight and the server's answer) whose times are kept per
# TLS connection, for missed reuse on HTTPS. A page load puts tens of requests on a keep-alive
# connection; long-lived ones (HTTP/2, websockets) carry thousands, and their times would grow
# memory with the capture. Past the bound the last kept exchange is stretched over every later
# one: the connection then looks busy throughout, so missed reuse is never claimed from it.
MAX_TLS_APP_EXCHANGES = 64
# TLS decryption with a key log (issue 17): encrypted records a direction holds before they can
# be decrypted (a client's 0-RTT records wait for the ServerHello that names the suite) and the
# 0-RTT plaintext held until the server says whether it accepted it (EncryptedExtensions). A
# server accepts at most max_early_data_size bytes (OpenSSL's default 16 KiB, nginx's too); 256 KiB
# is room for any real one while a stream that never gets a ServerHello cannot grow memory.
MAX_TLS_DECRYPT_PENDING_BYTES = 256 * 1024
# pcapan live --keylog: the key log file is read again when a connection's secrets are not in it
# yet, at most this often (a busy capture would otherwise reread it for every new connection);
# and once more when a handshake ends without them if the last reading is older than the packet
# that ended it (Analyzer.use_keylog: at most once per batch fed).
KEYLOG_REREAD_S = 0.2

# --- web performance (frames/webperf) ---------------------------------------------------------
# Pipelined responses are called serialised when their median gap (this response's start after
# the previous one's end) is at least this long and at least PIPELINE_SERIAL_THINK_SHARE of the
# server's think time on the connection's non-pipelined requests. Below 1 ms the gaps on the
# wire come from the sender's kernel (Nagle, the congestion window, scheduling: 0-70 us in the
# nginx samples), not from work the server did between two requests.
PIPELINE_SERIAL_MIN_GAP_S = 0.001
# A server that starts request N+1 only after sending response N puts about one think time
# between them; one that worked on them in parallel puts none. Half a think time splits the two.
PIPELINE_SERIAL_THINK_SHARE = 0.5

# Missed reuse (frames/webperf.missed_reuse) counts an open connection as available to a new one
# only when it had been idle at least max(REUSE_IDLE_RTTS x its handshake RTT, REUSE_IDLE_FLOOR_S)
# when the new one opened (and stayed idle until the new one's first request). The owner of a
# keep-alive connection sends its next request about one round trip after the previous response
# ended as seen from a capture point near the server (the response's last byte must reach the
# client and the request come back): 2 RTTs leaves room for that plus the client's own work.
REUSE_IDLE_RTTS = 2.0
# On a LAN or loopback the RTT is microseconds, but a client's gap between two back-to-back
# requests is its own processing time: a median of 4 ms (curl jobs, issue 18's capture), tens of
# ms for a browser parsing a page. 100 ms is longer than those gaps and shorter than the idle time
# of a connection that really waited (a user's next click, a page's later resources: seconds).
REUSE_IDLE_FLOOR_S = 0.1

# --- findings (frames/findings): what an expert would point at -------------------------------
# Each is a default of ``findings(thresholds=...)`` / ``--threshold NAME=VALUE`` (the name is the
# constant's lower-case name without FINDINGS_).
# No keep-alive: a server with at least this share of its exchanges ending the connection
# (Connection: close or HTTP/1.0). "Most exchanges", as the issue puts it: more than half.
FINDINGS_NO_KEEP_ALIVE_SHARE = 0.5
# ... over at least this many connections (one closed exchange alone costs nothing extra).
FINDINGS_NO_KEEP_ALIVE_MIN_CONNECTIONS = 2
# Missed reuse: reported per client-server pair from this many (strict) cases: one new
# connection beside an idle one already costs a handshake.
FINDINGS_MISSED_REUSE_MIN = 1
# Pipelining head-of-line wait: a pipelined request whose response waited this long behind
# earlier ones. 100 ms is the scale a user notices (the RAIL model's response budget) and far
# above the sender's own scheduling gaps (under 1 ms, see PIPELINE_SERIAL_MIN_GAP_S).
FINDINGS_HOL_WAIT_S = 0.1
# Slow server think time: TTFB minus the network RTT (capture point to server and back) above
# this. Lighthouse's server-response-time audit flags a document's TTFB over 600 ms.
FINDINGS_THINK_TIME_S = 0.6
# Many parallel connections: more open at once to one server than browsers allow per host
# (6 in Chrome and Firefox; RFC 9112 section 9.4 asks clients to limit them).
FINDINGS_PARALLEL_CONNECTIONS = 6
# Retransmissions: a server whose retransmitted segments exceed this share of its packets. At
# 1% loss a TCP flow's throughput is already a tenth of the loss-free one at common RTTs
# (the Mathis et al. model: rate ~ MSS / (RTT sqrt(p))).
FINDINGS_RETRANSMIT_RATE = 0.01
# ... judged only from this many server packets (one retransmission in a handful is noise).
FINDINGS_RETRANSMIT_MIN_PACKETS = 100
# Slow start: initial congestion window assumed (RFC 6928: 10 segments, Linux's default).
FINDINGS_INITIAL_WINDOW_SEGMENTS = 10
# A response taking this many more round trips than slow start from that window needs is a
# stall. Measured on samples/rtt-http.pcap (Linux to Linux, IW10, 50 ms RTT): a 200 KiB response
# takes 1 round more than the doubling model (receive-window growth, delayed ACKs), so 2.
FINDINGS_SLOW_START_EXTRA_RTTS = 2.0
# Slow start is judged only on connections whose RTT is at least this long: on a LAN or
# loopback the transfer time is serialisation, not round trips.
FINDINGS_SLOW_START_MIN_RTT_S = 0.005
# DHE groups smaller than this many bits (RFC 9325 section 4.1, Mozilla intermediate: 2048).
FINDINGS_DH_MIN_BITS = 2048
# Rows of evidence (uids) kept per finding; more are counted in ``count`` but not listed, so a
# capture of a million connections to one server does not make one cell megabytes long.
MAX_FINDING_EVIDENCE = 1000

# Tunnels inside tunnels: decoded up to this depth (a VXLAN packet carrying VXLAN ...); deeper
# nesting is unheard of in practice and would let one crafted frame cost unbounded work.
MAX_TUNNEL_DEPTH = 3
# Distinct encapsulations (kind, outer addresses, VNI/key/session, parent) remembered for the
# tunnel_parents column, ~300 bytes each: real overlays have a few VTEP pairs and VNIs, but a
# crafted capture could make every packet a new tunnel. Past the bound, further new ones are
# described by kind only ("<kind> (more than MAX_TUNNELS tunnels)") and a tunnel_table_full
# anomaly is reported once; the inner packets are still decoded.
MAX_TUNNELS = 65536

# Round-trip time bookkeeping per endpoint across batches. Segments not yet acknowledged: a
# window's worth is a few hundred segments (64 KiB .. 16 MiB windows at 1448 bytes a segment);
# beyond this bound the oldest lose their sample, memory stays flat.
RTT_MAX_PENDING_SEGMENTS = 4096
# TCP timestamp values sent and not yet echoed: the peer echoes within about one RTT, during
# which a sender with a 1 ms clock emits a few hundred values at most.
RTT_MAX_PENDING_TSVALS = 512

# --- live capture (pcapan live) ---------------------------------------------------------------
# Bytes kept of each frame. libpcap's MAXIMUM_SNAPLEN (tcpdump's default): loopback's MTU is
# 64 KiB and segmentation offload hands the packet socket frames up to 64 KiB + headers, so a
# smaller snap length would cut payload that HTTP/TLS parsing needs.
LIVE_SNAPLEN = 262144
# Kernel receive buffer of the packet socket (SO_RCVBUFFORCE as root, else capped by
# net.core.rmem_max). It absorbs the traffic that arrives while a batch is analysed: at
# 1 Gbit/s, 64 MiB is half a second, longer than the analysis of a full batch takes.
LIVE_SOCKET_BUFFER_BYTES = 64 * 1024 * 1024
# Frames handed to the analyzer at once: the engine's per-batch numpy work is amortised from a
# few thousand frames on (file reading gives it ~9,000 at a time).
LIVE_BATCH_FRAMES = 8192
# Buffer of one batch (frames are received straight into it, in the --write file's layout).
# Same size as a file read chunk; a batch is handed over when less than a snap length is left.
LIVE_BATCH_BYTES = 8 * 1024 * 1024
# Longest a captured frame waits before the analyzer sees it when traffic is light, so the
# dashboard and the snapshots lag the wire by at most this much.
LIVE_FEED_INTERVAL_S = 0.5
# Longest one wait for packets blocks: bounds how late Ctrl-C, SIGTERM, --duration and stop()
# take effect (the signal handler only sets a flag, so no batch is left half-analysed).
LIVE_POLL_S = 0.1
# On stop, frames the kernel had already queued are still read for at most this long (they
# were on the wire before the stop); a flood cannot delay the exit beyond it.
LIVE_STOP_DRAIN_S = 1.0
# Seconds between dashboard redraws and snapshots (the default of ``pcapan live --interval`` and
# of ``interval_s``): once a second is readable and costs nothing measurable.
LIVE_DASHBOARD_REFRESH_S = 1.0
# Seconds between recomputations of the findings counts shown during a live capture: findings
# are derived from the tables, whose build grows with the connections finished so far (~1 s for
# 12,000 connections), so they are refreshed this often, not at every dashboard tick.
LIVE_FINDINGS_INTERVAL_S = 10.0
# RTT percentiles on the dashboard are over the most recent samples only, so they follow the
# network's current state and memory does not grow with the run.
LIVE_RTT_WINDOW_SAMPLES = 10_000
# Host names (HTTP Host, TLS SNI) counted for the dashboard's top hosts. Names come from the
# traffic (anyone can send any Host header); past the bound the least seen half is forgotten.
LIVE_MAX_TRACKED_HOSTS = 4096
# Rows in the dashboard's top-hosts table.
LIVE_TOP_HOSTS = 8
# --rotate parts waiting for (or in) the export process. A part holds a rotation period's rows;
# when parts are made faster than their tables can be built, the capture waits rather than
# queueing them without bound (memory), and the kernel's drop count shows what that cost.
LIVE_MAX_PENDING_PARTS = 2

# Connections from which the connections table is big enough to collect the analysis' cyclic
# garbage first: finished flows' protocol probes and their connection stay in reference cycles
# until the collector runs (200,000 SYN-scan flows: ~60 MB), and the table then reuses that
# memory instead of adding to it (peak 452 -> under 400 MB). A full collection costs ~50 ms, not
# worth it for a small table (it would be 1% of a 12,000-connection capture's analysis).
GC_BEFORE_TABLE_ROWS = 50_000

# --- plot and report ------------------------------------------------------------------------
# Requests (rows) the waterfall draws by default. At 0.28 in per row a 60-row figure is ~18 in
# tall, about two laptop screens: more rows than that are scrolled past, not read (issue 15: a
# 23,050-request capture drawn whole was one black block of ~10,000 overprinted rows).
WATERFALL_REQUESTS = 60
# The most rows a waterfall draws even when asked for more: past this the figure is taller than
# an image viewer or a browser shows usefully (~60 in) and its labels would have to overprint.
WATERFALL_MAX_ROWS = 200
# A pause longer than this between the captures given to one analysis (files read years apart,
# or an hour apart) is cut out of time axes and marked, rather than drawn as empty axis: a
# minute of silence inside one capture is still drawn to scale.
CAPTURE_GAP_S = 60.0
# The HTML report's size bound (issue 15: a file to attach to a ticket or a mail; mail servers
# commonly refuse 10-25 MB). What keeps it there: tables cut to their top rows (the full tables
# go to CSV files beside it), cells cut at REPORT_CELL_CHARS, dense plots as PNG.
REPORT_MAX_BYTES = 5 * 1024 * 1024
# Characters of one table cell in the report page (a URI or an anomaly's detail can be 64 KB of
# captured text); the cut cell ends with an ellipsis and the CSV beside the page has all of it.
REPORT_CELL_CHARS = 300

# --- api ------------------------------------------------------------------------------------
# File names ``repr(Result)`` lists before "+N more", and the characters kept of each: evaluating
# ``res`` in a notebook must print a few lines whatever the capture (a 300,000-packet capture
# once printed 52 MB, every record).
REPR_MAX_FILES = 3
REPR_MAX_NAME_CHARS = 80

# Seconds between progress messages a parallel worker sends (pcapan.parallel): a bar redrawn a few
# times a second looks live, and a Dask worker's message is a round trip to the scheduler, which
# must not cost it time per batch.
PARALLEL_PROGRESS_INTERVAL_S = 0.25
# Seconds between looks at whether a Dask shard is done while a progress bar is fed (a look is
# local to the client, no message): the caller learns of a finished shard at most this late.
PARALLEL_DONE_POLL_S = 0.02

# Seconds to wait for a Dask scheduler (--scheduler) before giving up with one line: long enough
# for a scheduler across a network, short enough that a wrong address does not look like a hang.
DASK_CONNECT_TIMEOUT_S = 10.0
