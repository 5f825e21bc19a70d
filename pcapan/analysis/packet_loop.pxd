# C types for packet_loop.py (Cython pure-Python mode; see README, "The compiled core").
cimport cython
from pcapan.flow.conn cimport Connection, Endpoint
from pcapan.flow.reassembly cimport Reassembler
from pcapan.analysis.bulk_runs cimport BulkRuns

cdef long long _CTRL, _SYN, _ACK

@cython.locals(
    j="Py_ssize_t", n="Py_ssize_t", i="long long", k="long long", ais=bint,
    fl="long long", seq="long long", ack="long long", t="long long", plen="long long",
    pcap="long long", poff="long long", toff="long long", thl="long long",
    idle="long long", fb="long long", rel_ack="long long", is_orig=bint,
    conn=Connection, ep=Endpoint, peer=Endpoint, pst=Reassembler,
    idx_l=list, ks=list, aiss=list, fls=list, seqs=list, acks=list, wins=list, plens=list,
    pcaps=list, poffs=list, toffs=list, thls=list, iplens=list, tss=list, fnos=list,
    slots=list, inorder_l=list, early_l=list, rpos=list, rgrp=list, rpos2=list,
    cur=dict, slot_of=dict, conns=list, flows=dict, keys=list, runs=BulkRuns,
)
cpdef void run(
    object eng, object tp, object idx, list cols, list rpos, list rgrp, list rpos2, dict cur,
    BulkRuns runs, list inorder_l, list early_l, list keys, dict slot_of, list conns,
    object slot, object mv,
)
