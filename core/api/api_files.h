/* core/api/api_files.h — POST /api/v2/files and GET /api/v2/files/{fileid}
 * (the rules are in core/domain/files.h). */
#ifndef ATRIUM_CORE_API_FILES_H
#define ATRIUM_CORE_API_FILES_H

#include "api.h"

int atr_api_file_upload(atr_api_req_t *r);
int atr_api_file_get(atr_api_req_t *r);

#endif
