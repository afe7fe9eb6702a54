# The `real` part's report: one markdown table per data set from the rows
# "tool  set/op  bytes  seconds  maxrss_kib  repo_bytes" that run.sh's
# measure writes. Peers are every tool but arca and the baselines (tar, cp);
# the last column compares arca with the best peer (above 1: arca better).
BEGIN { FS = "\t"; nbase = split("tar cp", b, " "); for (i = 1; i <= nbase; i++) base[b[i]] = 1 }
{
    tool = $1; split($2, p, "/"); set = p[1]; op = p[2]
    if (!(set in seen_set)) { seen_set[set] = 1; sets[++nsets] = set }
    if (!((set, op) in seen_op)) { seen_op[set, op] = 1; ops[set, ++nops[set]] = op }
    if (!(tool in seen_tool)) { seen_tool[tool] = 1; tools[++ntools] = tool }
    secs[tool, set, op] = ($4 > 0 ? $4 : 0.01); bytes[tool, set, op] = $3
    rss[tool, set, op] = $5 / 1024
    if ($6 != "-") stored[tool, set, op] = $6 / 1048576
    has[tool, set] = 1
}
function best_peer(set, op, arr, lower,    t, i, v, best) {
    best = ""
    for (i = 1; i <= ntools; i++) {
        t = tools[i]
        if (t == "arca" || t in base || !((t, set, op) in arr)) continue
        v = arr[t, set, op]
        if (best == "" || (lower ? v < bestv : v > bestv)) { best = t; bestv = v }
    }
    BEST = best; BESTV = bestv
    return best != ""
}
END {
    for (s = 1; s <= nsets; s++) {
        set = sets[s]
        hdr = "| " set " |"; sep = "|---|"
        for (i = 1; i <= ntools; i++) if ((tools[i], set) in has) { hdr = hdr " " tools[i] " |"; sep = sep "---:|" }
        print hdr " arca vs best peer |"
        print sep "---|"
        for (o = 1; o <= nops[set]; o++) {
            op = ops[set, o]
            line = "| " op ", s (MB/s) |"
            for (i = 1; i <= ntools; i++) {
                t = tools[i]
                if (!((t, set) in has)) continue
                if ((t, set, op) in secs)
                    line = line sprintf(" %.2f (%.0f) |", secs[t, set, op], bytes[t, set, op] / secs[t, set, op] / 1e6)
                else line = line " |"
            }
            r = ""
            if (("arca", set, op) in secs && best_peer(set, op, secs, 1))
                r = sprintf("%.2f× (%s)", BESTV / secs["arca", set, op], BEST)
            print line " " r " |"
        }
        # Stored size after the first and the last backup, peak RSS.
        for (k = 1; k <= 2; k++) {
            op = (k == 1) ? "backup-1" : "backup-2"
            line = "| stored after " op ", MiB |"
            for (i = 1; i <= ntools; i++) {
                t = tools[i]
                if (!((t, set) in has)) continue
                line = line (((t, set, op) in stored) ? sprintf(" %.0f |", stored[t, set, op]) : " |")
            }
            r = ""
            if (("arca", set, op) in stored && best_peer(set, op, stored, 1))
                r = sprintf("%.2f× (%s)", BESTV / stored["arca", set, op], BEST)
            print line " " r " |"
        }
        for (o = 1; o <= nops[set]; o++) {
            op = ops[set, o]
            line = "| peak RSS " op ", MiB |"
            for (i = 1; i <= ntools; i++) {
                t = tools[i]
                if (!((t, set) in has)) continue
                line = line (((t, set, op) in rss) ? sprintf(" %.0f |", rss[t, set, op]) : " |")
            }
            print line " |"
        }
        print ""
    }
}
