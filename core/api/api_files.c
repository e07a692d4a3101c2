/* core/api/api_files.c — POST /api/v2/files and GET /api/v2/files/{fileid}:
 * the request's bytes and Content-Type to the files domain (files.h) and
 * its answer back. */
#include "api_files.h"

#include "atrium/error.h"
#include "files.h"
#include "http_exchange.h"

/* The upload's own refusals have statuses of their own: a type we do not
 * take (415) and a file over the limit (413). */
static int answer_upload_fault(atr_api_req_t *r, atr_fault_t *f) {
  int code = atr_fault_code(f);
  if (code != ATR_ENOTSUP && code != ATR_ERANGE)
    return atr_api_fault(r, f);
  atr_api_error(r, code == ATR_ENOTSUP ? 415 : 413, f->message, f->detail);
  atr_fault_clear(f);
  return 0;
}

int atr_api_file_upload(atr_api_req_t *r) {
  atr_fault_t f = {0};
  atr_file_stored_t out;
  if (atr_file_upload(&r->env->dom, &r->actor,
                      atr__http_header(r->x, "Content-Type"), r->body,
                      r->body_len, &out, &f) != 0)
    return answer_upload_fault(r, &f);
  return atr_api_json(
      r, out.existed ? 200 : 201,
      json_pack("{s:s, s:s}", "hash", out.id, "sha256", out.sha256));
}

int atr_api_file_get(atr_api_req_t *r) {
  atr_fault_t f = {0};
  atr_file_t file;
  if (atr_file_get(&r->env->dom, &r->actor, atr_api_param(r, "fileid"), &file,
                   &f) != 0)
    return atr_api_fault(r, &f);
  atr_api_raw(r, 200, file.mimetype, file.data, file.len);
  atr_file_clear(&file);
  return 0;
}
