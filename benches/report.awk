# Render the results of benches/run.sh as markdown tables.
# Input: TSV lines "tool op bytes seconds maxrss_kib repo_bytes" (repo_bytes
# is "-" for restores). Variables: limits (arca-limits --json output),
# cbt (1 if arca image incrementals used --changed-extents), days.
BEGIN { FS = "\t" }

{
    t = $1; o = $2; k = t SUBSEP o
    if (!(t in seen)) { seen[t] = 1; tools[++nt] = t }
    if (!(k in runs)) { nops[t]++; ops[t, nops[t]] = o }
    # Repeated runs of one operation: the median time, the last size.
    bytes[k] = $3; runs[k]++; run[k, runs[k]] = ($4 > 0 ? $4 : 0.01); rss[k] = $5; stored[k] = $6
    group = (o ~ /^tree/ ? "tree" : "image")
    if ($5 > maxrss[t, group]) maxrss[t, group] = $5
}

function median(k,   n, i, j, v, a) {
    n = runs[k]
    for (i = 1; i <= n; i++) a[i] = run[k, i]
    for (i = 2; i <= n; i++) { v = a[i]; for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]; a[j + 1] = v }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}

function label(o,   d) {
    if (o == "tree-backup-1") return "tree: first backup"
    if (o == "tree-backup-2") return "tree: second backup, unchanged"
    if (o == "tree-backup-3") return "tree: third backup, files modified"
    if (o == "tree-restore") return "tree: restore latest"
    if (o == "image-day0") return "image: day 0, full"
    if (o == "image-restore") return "image: restore last version"
    if (o == "image-reread") return "image: last version again, full re-read"
    if (o ~ /^image-day/) { d = substr(o, 10); return "image: day " d ", incremental" }
    return o
}

function speed(t, o,   k) { k = t SUBSEP o; return (k in secs) ? bytes[k] / secs[k] / 1e6 : "" }
function repo_mib(t, o,   k) { k = t SUBSEP o; return (k in stored && stored[k] != "-") ? stored[k] / 1048576 : "" }
function rss_mib(t, g) { return ((t, g) in maxrss) ? maxrss[t, g] / 1024 : "" }
function fmt(x, f) { return (x == "") ? "-" : sprintf(f, x) }

# A comparison row: kind "speed" (higher is better) or "less" (lower is better).
function row(name, kind, a, peers,   i, p, r, line) {
    line = "| " name " | " fmt(a, "%.1f")
    for (i = 1; i <= nt; i++) if (tools[i] != "arca") line = line " | " fmt(peers[tools[i]], "%.1f")
    for (i = 1; i <= nt; i++) {
        p = tools[i]
        if (p == "arca") continue
        r = ""
        if (a != "" && peers[p] != "" && a > 0 && peers[p] > 0) r = (kind == "speed") ? a / peers[p] : peers[p] / a
        line = line " | " fmt(r, "%.2f×")
    }
    print line " |"
}

function json_num(key,   re, s) {
    re = "\"" key "\":[0-9.]+"
    if (match(limits, re)) { s = substr(limits, RSTART, RLENGTH); sub(/.*:/, "", s); return s + 0 }
    return ""
}

END {
    if (nt == 0) { print "(no tool runs recorded)"; exit }
    for (k in runs) secs[k] = median(k)
    for (i = 1; i <= nt; i++) {
        t = tools[i]
        print "### " t
        print ""
        print "MB/s = data bytes / wall seconds (MB = 10^6 B); wall s is the median of n runs; RSS and repository sizes in MiB."
        print ""
        print "| operation | n | data MiB | wall s | MB/s | peak RSS MiB | repository MiB after |"
        print "|---|---:|---:|---:|---:|---:|---:|"
        for (j = 1; j <= nops[t]; j++) {
            o = ops[t, j]; k = t SUBSEP o
            printf "| %s | %d | %.1f | %.1f | %.1f | %.1f | %s |\n", label(o), runs[k], bytes[k] / 1048576, secs[k],
                speed(t, o), rss[k] / 1024, fmt(repo_mib(t, o), "%.1f")
        }
        print ""
    }
    if (!("arca" in seen)) exit

    print "### Arca compared with its peers"
    print ""
    print "Ratio convention: **a ratio above 1 means Arca is better.** Speed ratio = Arca MB/s ÷ peer MB/s;"
    print "size and memory ratio = peer MiB ÷ Arca MiB."
    if (cbt == 1) print "Arca's image incrementals use the changed-extents list (changed-block tracking); the peers re-read the whole image, as does the \"full re-read\" row."
    print ""
    head = "| metric | arca"; sep = "|---|---:"
    for (i = 1; i <= nt; i++) if (tools[i] != "arca") { head = head " | " tools[i]; sep = sep "|---:" }
    for (i = 1; i <= nt; i++) if (tools[i] != "arca") { head = head " | arca vs " tools[i]; sep = sep "|---:" }
    print head " |"
    print sep "|"
    last = "image-day" (days - 1)
    split("tree-backup-1 tree-backup-2 tree-backup-3 tree-restore image-day0 image-day1 image-restore", sops, " ")
    split("tree first backup MB/s|tree second backup (unchanged) MB/s|tree backup after modifying files MB/s|tree restore MB/s|image first backup MB/s|image incremental (day 1) MB/s|image restore MB/s", snames, "|")
    for (s = 1; s <= 7; s++) {
        delete pv
        for (i = 1; i <= nt; i++) pv[tools[i]] = speed(tools[i], sops[s])
        if (pv["arca"] == "") continue
        row(snames[s], "speed", pv["arca"], pv)
        if (sops[s] == "image-day1" && ("arca" SUBSEP "image-reread") in secs)
            row("image incremental MB/s, arca full re-read", "speed", speed("arca", "image-reread"), pv)
    }
    delete pv
    for (i = 1; i <= nt; i++) pv[tools[i]] = repo_mib(tools[i], "tree-backup-1")
    if (pv["arca"] != "") row("tree stored MiB after first backup", "less", pv["arca"], pv)
    delete pv
    for (i = 1; i <= nt; i++) pv[tools[i]] = repo_mib(tools[i], "tree-backup-3")
    if (pv["arca"] != "") row("tree stored MiB after three backups", "less", pv["arca"], pv)
    delete pv
    for (i = 1; i <= nt; i++) pv[tools[i]] = repo_mib(tools[i], last)
    if (pv["arca"] != "") row("image stored MiB after " days " versions", "less", pv["arca"], pv)
    for (g = 1; g <= 2; g++) {
        grp = (g == 1 ? "tree" : "image")
        delete pv
        for (i = 1; i <= nt; i++) pv[tools[i]] = rss_mib(tools[i], grp)
        if (pv["arca"] != "") row(grp " peak RSS MiB (max over its runs)", "less", pv["arca"], pv)
    }
    print ""

    ideal = json_num("ideal_mb_s")
    if (ideal != "") {
        line = sprintf("Limits: FastCDC %.0f, BLAKE3 %.0f, zstd-3 %.0f, AES-256-GCM %.0f MB/s single-stage; combined 1 core %.0f MB/s; ideal on %d cores %.0f MB/s.",
            json_num("fastcdc_mb_s"), json_num("blake3_mb_s"), json_num("zstd3_mb_s"), json_num("aes256gcm_mb_s"),
            json_num("combined_1core_mb_s"), json_num("cores"), ideal)
        a = speed("arca", "tree-backup-1")
        if (a != "") line = line sprintf(" Arca first tree backup: %.1f MB/s = %.0f%% of the ideal.", a, 100 * a / ideal)
        a = speed("arca", "image-day0")
        if (a != "") line = line sprintf(" Arca first image backup: %.1f MB/s = %.0f%% of the ideal (holes are not hashed, so this can exceed 100%%).", a, 100 * a / ideal)
        print line
    }
}
