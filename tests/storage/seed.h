/* tests/storage/seed.h — rows the job-queue tests and benchmarks need: an
 * organization, a user, provisioner daemons (optionally tagged) and pending
 * jobs, written through the core's storage layer. Ids are fixed patterns so
 * tests can name them. Every function returns 0 or a negative ATR_E* with
 * *err set. */
#ifndef ATRIUM_TEST_SEED_H
#define ATRIUM_TEST_SEED_H

#include "db.h"

extern const char atr_seed_org_id[];
extern const char atr_seed_user_id[];
extern const char atr_seed_file_id[];

void atr_seed_daemon_id(int i, char out[37]);
void atr_seed_job_id(int i, char out[37]);
/* The organization and the user every job refers to. */
int atr_seed_owners(atr_store_t *store, char **err);
/* Daemon i, with one tag when tag_key is not NULL. */
int atr_seed_daemon(atr_store_t *store, int i, const char *tag_key,
                    const char *tag_value, char **err);
/* Jobs first .. first+count-1, created in that order, in one transaction. */
int atr_seed_jobs(atr_store_t *store, int first, int count, char **err);

#endif
