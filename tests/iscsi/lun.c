/* A small libiscsi client for Arca's iSCSI tests (libiscsi's own tools
 * cannot dump a LUN or write a pattern):
 *
 *   lun read  iscsi://[user%secret@]host:port/iqn/0 > image
 *   lun write iscsi://host:port/iqn/0 LBA BLOCKS BYTE
 *
 * read: READ CAPACITY(16), then the whole LUN with READ(16) in 1 MiB
 * pieces to stdout. write: BLOCKS blocks of BYTE at LBA with WRITE(16),
 * then SYNCHRONIZE CACHE(10). Exit 0 on success; errors on stderr. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

static int fail(struct iscsi_context *c, const char *what) {
    fprintf(stderr, "%s: %s\n", what, c ? iscsi_get_error(c) : "");
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: lun read|write URL [LBA BLOCKS BYTE]\n");
        return 2;
    }
    struct iscsi_context *c = iscsi_create_context("iqn.2026-11.io.arca:test-client");
    if (!c) return fail(NULL, "context");
    struct iscsi_url *u = iscsi_parse_full_url(c, argv[2]);
    if (!u) return fail(c, "url");
    iscsi_set_targetname(c, u->target);
    iscsi_set_session_type(c, ISCSI_SESSION_NORMAL);
    iscsi_set_header_digest(c, ISCSI_HEADER_DIGEST_NONE);
    if (u->user[0] && iscsi_set_initiator_username_pwd(c, u->user, u->passwd))
        return fail(c, "chap");
    if (iscsi_full_connect_sync(c, u->portal, u->lun)) return fail(c, "login");
    struct scsi_task *t = iscsi_readcapacity16_sync(c, u->lun);
    if (!t || t->status != SCSI_STATUS_GOOD) return fail(c, "read capacity");
    struct scsi_readcapacity16 *rc = scsi_datain_unmarshall(t);
    if (!rc) return fail(c, "read capacity data");
    uint64_t blocks = rc->returned_lba + 1;
    uint32_t bs = rc->block_length;
    scsi_free_scsi_task(t);
    if (!strcmp(argv[1], "read")) {
        uint64_t step = (1 << 20) / bs;
        for (uint64_t lba = 0; lba < blocks; lba += step) {
            uint64_t n = blocks - lba < step ? blocks - lba : step;
            t = iscsi_read16_sync(c, u->lun, lba, n * bs, bs, 0, 0, 0, 0, 0);
            if (!t || t->status != SCSI_STATUS_GOOD) return fail(c, "read16");
            if (fwrite(t->datain.data, 1, t->datain.size, stdout) != (size_t)t->datain.size)
                return fail(NULL, "stdout");
            scsi_free_scsi_task(t);
        }
    } else if (!strcmp(argv[1], "write") && argc == 6) {
        uint64_t lba = strtoull(argv[3], NULL, 0);
        uint32_t n = strtoul(argv[4], NULL, 0);
        size_t len = (size_t)n * bs;
        unsigned char *buf = malloc(len);
        if (!buf) return fail(NULL, "malloc");
        memset(buf, (int)strtoul(argv[5], NULL, 0), len);
        t = iscsi_write16_sync(c, u->lun, lba, buf, len, bs, 0, 0, 0, 0, 0);
        if (!t || t->status != SCSI_STATUS_GOOD) return fail(c, "write16");
        scsi_free_scsi_task(t);
        t = iscsi_synchronizecache10_sync(c, u->lun, 0, 0, 0, 0);
        if (!t || t->status != SCSI_STATUS_GOOD) return fail(c, "synchronize cache");
        scsi_free_scsi_task(t);
    } else {
        fprintf(stderr, "unknown mode %s\n", argv[1]);
        return 2;
    }
    iscsi_logout_sync(c);
    iscsi_destroy_context(c);
    return 0;
}
