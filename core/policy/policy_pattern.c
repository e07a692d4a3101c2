/* core/policy_pattern.c — string.find, match, gmatch and gsub for the
 * sandbox: Lua 5.4 patterns (reference manual §6.4.1) matched by a
 * backtracking matcher that counts its steps.
 *
 * Why not Lua's own: matching runs in C, where the count hook never fires,
 * and a few backtracking items on a long subject ("(.-)(.-)(.-)x") take
 * time exponential in their number. Here every step is counted and
 * charged to the instruction budget (ATR__PATTERN_STEPS steps for one
 * instruction), and the clock is read as the steps go, so a pattern hits
 * the same limits as Lua code does. Plain finds use memmem (linear).
 *
 * Results, errors and the arguments' meaning follow Lua 5.4;
 * tests/lua/test_patterns.c compares the two on thousands of cases. */
#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>
#include <string.h>

#include "policy_internal.h"

#define ESC '%'
#define SPECIALS "^$*+?.([%-"
#define MAX_DEPTH 200   /* nested matcher calls, as Lua's MAXCCALLS */
#define MAX_CAPTURES 32 /* as Lua's LUA_MAXCAPTURES */
#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)
/* Matcher steps per instruction charged, and steps between charges. */
#define ATR__PATTERN_STEPS 16
#define CHARGE_EVERY 1024

typedef struct matcher {
  lua_State *L;
  const char *s0;    /* subject start */
  const char *s_end; /* subject end */
  const char *p_end; /* pattern end */
  int depth;         /* calls left before "pattern too complex" */
  int level;         /* captures open or closed so far */
  unsigned steps;
  struct {
    const char *init;
    ptrdiff_t len; /* or CAP_UNFINISHED, CAP_POSITION */
  } cap[MAX_CAPTURES];
} matcher_t;

static void step(matcher_t *m) {
  if (++m->steps >= CHARGE_EVERY) {
    m->steps = 0;
    atr__policy_charge(m->L, CHARGE_EVERY / ATR__PATTERN_STEPS);
  }
}

static void matcher_init(matcher_t *m, lua_State *L, const char *s, size_t ls,
                         const char *p, size_t lp) {
  m->L = L;
  m->s0 = s;
  m->s_end = s + ls;
  m->p_end = p + lp;
  m->steps = 0;
}

static void matcher_reset(matcher_t *m) {
  m->level = 0;
  m->depth = MAX_DEPTH;
}

/* Where the single-character class starting at p ends. */
static const char *class_end(matcher_t *m, const char *p) {
  if (*p == ESC) {
    if (p + 1 >= m->p_end)
      luaL_error(m->L, "malformed pattern (ends with '%%')");
    return p + 2;
  }
  if (*p++ == '[') {
    if (p < m->p_end && *p == '^')
      p++;
    /* The first character after '[' (or '[^') is never the closing ']'. */
    do {
      if (p >= m->p_end)
        luaL_error(m->L, "malformed pattern (missing ']')");
      if (*p++ == ESC && p < m->p_end)
        p++;
    } while (p >= m->p_end || *p != ']');
    return p + 1;
  }
  return p;
}

/* %a, %d, ... (cl its letter); upper case is the complement; any other
 * character stands for itself. */
static bool class_match(int c, int cl) {
  bool res;
  switch (tolower(cl)) {
  case 'a':
    res = isalpha(c);
    break;
  case 'c':
    res = iscntrl(c);
    break;
  case 'd':
    res = isdigit(c);
    break;
  case 'g':
    res = isgraph(c);
    break;
  case 'l':
    res = islower(c);
    break;
  case 'p':
    res = ispunct(c);
    break;
  case 's':
    res = isspace(c);
    break;
  case 'u':
    res = isupper(c);
    break;
  case 'w':
    res = isalnum(c);
    break;
  case 'x':
    res = isxdigit(c);
    break;
  case 'z': /* deprecated, still in 5.4: the zero byte */
    res = c == 0;
    break;
  default:
    return cl == c;
  }
  return isupper(cl) ? !res : res;
}

/* c against the set [...] from p ('[') to ec (']'). */
static bool set_match(int c, const char *p, const char *ec) {
  bool yes = true;
  p++;
  if (*p == '^') {
    yes = false;
    p++;
  }
  while (p < ec) {
    if (*p == ESC) {
      if (class_match(c, (unsigned char)p[1]))
        return yes;
      p += 2;
    } else if (p + 2 < ec && p[1] == '-') {
      if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
        return yes;
      p += 3;
    } else {
      if ((unsigned char)*p == c)
        return yes;
      p++;
    }
  }
  return !yes;
}

static bool single_match(const matcher_t *m, const char *s, const char *p,
                         const char *ep) {
  if (s >= m->s_end)
    return false;
  int c = (unsigned char)*s;
  switch (*p) {
  case '.':
    return true;
  case ESC:
    return class_match(c, (unsigned char)p[1]);
  case '[':
    return set_match(c, p, ep - 1);
  default:
    return (unsigned char)*p == c;
  }
}

static const char *do_match(matcher_t *m, const char *s, const char *p);

static const char *max_expand(matcher_t *m, const char *s, const char *p,
                              const char *ep) {
  ptrdiff_t i = 0;
  while (single_match(m, s + i, p, ep)) {
    step(m);
    i++;
  }
  for (; i >= 0; i--) {
    const char *r = do_match(m, s + i, ep + 1);
    if (r)
      return r;
  }
  return NULL;
}

static const char *min_expand(matcher_t *m, const char *s, const char *p,
                              const char *ep) {
  for (;;) {
    const char *r = do_match(m, s, ep + 1);
    if (r)
      return r;
    if (!single_match(m, s, p, ep))
      return NULL;
    s++;
  }
}

static const char *start_capture(matcher_t *m, const char *s, const char *p,
                                 ptrdiff_t what) {
  if (m->level >= MAX_CAPTURES)
    luaL_error(m->L, "too many captures");
  m->cap[m->level].init = s;
  m->cap[m->level].len = what;
  m->level++;
  const char *r = do_match(m, s, p);
  if (!r)
    m->level--;
  return r;
}

static const char *end_capture(matcher_t *m, const char *s, const char *p) {
  int l = m->level - 1;
  while (l >= 0 && m->cap[l].len != CAP_UNFINISHED)
    l--;
  if (l < 0)
    luaL_error(m->L, "invalid pattern capture");
  m->cap[l].len = s - m->cap[l].init;
  const char *r = do_match(m, s, p);
  if (!r)
    m->cap[l].len = CAP_UNFINISHED;
  return r;
}

static const char *match_balance(matcher_t *m, const char *s, const char *p) {
  if (p + 1 >= m->p_end)
    luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
  if (s >= m->s_end || *s != *p)
    return NULL;
  char open = p[0], close = p[1];
  int depth = 1;
  while (++s < m->s_end) {
    step(m);
    if (*s == close) {
      if (--depth == 0)
        return s + 1;
    } else if (*s == open) {
      depth++;
    }
  }
  return NULL;
}

/* %1 .. %9: the text of an earlier, closed capture again. */
static const char *match_backref(matcher_t *m, const char *s, int digit) {
  int l = digit - '1';
  if (l < 0 || l >= m->level || m->cap[l].len == CAP_UNFINISHED)
    luaL_error(m->L, "invalid capture index %%%d", l + 1);
  ptrdiff_t len = m->cap[l].len;
  if (len < 0) /* a position capture matches no text */
    return NULL;
  atr__policy_charge(m->L, (uint64_t)len / ATR__PATTERN_STEPS);
  if (m->s_end - s >= len && memcmp(m->cap[l].init, s, (size_t)len) == 0)
    return s + len;
  return NULL;
}

/* %f[set]: between a character not in set and one in it ('\0' beyond
 * either end). */
static const char *match_frontier(matcher_t *m, const char *s,
                                  const char **pp) {
  const char *p = *pp + 2;
  if (p >= m->p_end || *p != '[')
    luaL_error(m->L, "missing '[' after '%%f' in pattern");
  const char *ep = class_end(m, p);
  int prev = s == m->s0 ? '\0' : (unsigned char)s[-1];
  int cur = s < m->s_end ? (unsigned char)*s : '\0';
  *pp = ep;
  if (!set_match(prev, p, ep - 1) && set_match(cur, p, ep - 1))
    return s;
  return NULL;
}

/* The end of the match of p at s, or NULL. Tail positions loop. */
static const char *do_match(matcher_t *m, const char *s, const char *p) {
  if (m->depth-- == 0)
    luaL_error(m->L, "pattern too complex");
  step(m);
  while (s && p < m->p_end) {
    step(m);
    if (*p == '(') {
      if (p + 1 < m->p_end && p[1] == ')')
        s = start_capture(m, s, p + 2, CAP_POSITION);
      else
        s = start_capture(m, s, p + 1, CAP_UNFINISHED);
      break;
    }
    if (*p == ')') {
      s = end_capture(m, s, p + 1);
      break;
    }
    if (*p == '$' && p + 1 == m->p_end) {
      s = s == m->s_end ? s : NULL;
      break;
    }
    if (*p == ESC && p + 1 < m->p_end) {
      if (p[1] == 'b') {
        s = match_balance(m, s, p + 2);
        p += 4;
        continue;
      }
      if (p[1] == 'f') {
        s = match_frontier(m, s, &p);
        continue;
      }
      if (isdigit((unsigned char)p[1])) {
        s = match_backref(m, s, (unsigned char)p[1]);
        p += 2;
        continue;
      }
    }
    const char *ep = class_end(m, p);
    char q = ep < m->p_end ? *ep : '\0';
    if (!single_match(m, s, p, ep)) {
      if (q == '*' || q == '?' || q == '-') {
        p = ep + 1; /* the item may match nothing */
        continue;
      }
      s = NULL;
      break;
    }
    if (q == '?') {
      const char *r = do_match(m, s + 1, ep + 1);
      if (r) {
        s = r;
        break;
      }
      p = ep + 1;
    } else if (q == '+') {
      s = max_expand(m, s + 1, p, ep);
      break;
    } else if (q == '*') {
      s = max_expand(m, s, p, ep);
      break;
    } else if (q == '-') {
      s = min_expand(m, s, p, ep);
      break;
    } else {
      s++;
      p = ep;
    }
  }
  m->depth++;
  return s;
}

/* ---- captures ------------------------------------------------------------ */

/* Push capture i (the whole match s..e when there are none and i is 0). */
static void push_capture(matcher_t *m, int i, const char *s, const char *e) {
  if (i >= m->level) {
    if (i != 0)
      luaL_error(m->L, "invalid capture index %%%d", i + 1);
    lua_pushlstring(m->L, s, (size_t)(e - s));
    return;
  }
  ptrdiff_t l = m->cap[i].len;
  if (l == CAP_UNFINISHED)
    luaL_error(m->L, "unfinished capture");
  if (l == CAP_POSITION)
    lua_pushinteger(m->L, (lua_Integer)(m->cap[i].init - m->s0) + 1);
  else
    lua_pushlstring(m->L, m->cap[i].init, (size_t)l);
}

/* Push every capture (the whole match when none and s is not NULL). */
static int push_captures(matcher_t *m, const char *s, const char *e) {
  int n = m->level == 0 && s ? 1 : m->level;
  luaL_checkstack(m->L, n, "too many captures");
  for (int i = 0; i < n; i++)
    push_capture(m, i, s, e);
  return n;
}

/* ---- the functions ------------------------------------------------------- */

/* A 1-based, possibly negative position as in string.find; may be past
 * the end. */
static size_t start_pos(lua_Integer pos, size_t len) {
  if (pos > 0)
    return (size_t)pos;
  if (pos == 0 || pos < -(lua_Integer)len)
    return 1;
  return len + (size_t)pos + 1;
}

static bool has_specials(const char *p, size_t lp) {
  for (size_t i = 0; i < lp; i++)
    if (p[i] != '\0' && strchr(SPECIALS, p[i]))
      return true;
  return false;
}

static int find_aux(lua_State *L, bool find) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t init = start_pos(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) {
    luaL_pushfail(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
    atr__policy_charge(L, (ls - init) / ATR__PATTERN_STEPS);
    const char *at = memmem(s + init, ls - init, p, lp);
    if (at) {
      lua_pushinteger(L, (lua_Integer)(at - s) + 1);
      lua_pushinteger(L, (lua_Integer)(at - s) + (lua_Integer)lp);
      return 2;
    }
    luaL_pushfail(L);
    return 1;
  }
  bool anchor = lp > 0 && *p == '^';
  if (anchor) {
    p++;
    lp--;
  }
  matcher_t m;
  matcher_init(&m, L, s, ls, p, lp);
  const char *s1 = s + init;
  do {
    matcher_reset(&m);
    const char *e = do_match(&m, s1, p);
    if (e) {
      if (!find)
        return push_captures(&m, s1, e);
      lua_pushinteger(L, (lua_Integer)(s1 - s) + 1);
      lua_pushinteger(L, (lua_Integer)(e - s));
      return push_captures(&m, NULL, NULL) + 2;
    }
  } while (s1++ < m.s_end && !anchor);
  luaL_pushfail(L);
  return 1;
}

static int str_find(lua_State *L) {
  return find_aux(L, true);
}

static int str_match(lua_State *L) {
  return find_aux(L, false);
}

typedef struct gmatch_state {
  const char *src; /* where the next search starts */
  const char *lastmatch;
  size_t ls, lp;
} gmatch_state_t;

/* Upvalues: the subject, the pattern, the state. */
static int gmatch_next(lua_State *L) {
  const char *s = lua_tostring(L, lua_upvalueindex(1));
  const char *p = lua_tostring(L, lua_upvalueindex(2));
  gmatch_state_t *g = lua_touserdata(L, lua_upvalueindex(3));
  matcher_t m;
  matcher_init(&m, L, s, g->ls, p, g->lp);
  for (const char *src = g->src; src <= m.s_end; src++) {
    matcher_reset(&m);
    const char *e = do_match(&m, src, p);
    if (e && e != g->lastmatch) {
      g->src = g->lastmatch = e;
      return push_captures(&m, src, e);
    }
  }
  g->src = m.s_end + 1;
  return 0;
}

static int str_gmatch(lua_State *L) {
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  luaL_checklstring(L, 2, &lp);
  size_t init = start_pos(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls)
    init = ls + 1; /* nothing to match */
  lua_settop(L, 2);
  gmatch_state_t *g = lua_newuserdatauv(L, sizeof *g, 0);
  g->src = s + init;
  g->lastmatch = NULL;
  g->ls = ls;
  g->lp = lp;
  lua_pushcclosure(L, gmatch_next, 3);
  return 1;
}

/* The replacement string (arg 3) with %0-%9 and %% expanded. */
static void add_replacement(matcher_t *m, luaL_Buffer *b, const char *s,
                            const char *e) {
  lua_State *L = m->L;
  size_t l;
  const char *r = lua_tolstring(L, 3, &l);
  const char *pct;
  while ((pct = memchr(r, ESC, l)) != NULL) {
    luaL_addlstring(b, r, (size_t)(pct - r));
    pct++; /* at most the terminating '\0' */
    if (*pct == ESC) {
      luaL_addchar(b, ESC);
    } else if (*pct == '0') {
      luaL_addlstring(b, s, (size_t)(e - s));
    } else if (isdigit((unsigned char)*pct)) {
      push_capture(m, *pct - '1', s, e);
      luaL_tolstring(L, -1, NULL);
      lua_remove(L, -2);
      luaL_addvalue(b);
    } else {
      luaL_error(L, "invalid use of '%c' in replacement string", ESC);
    }
    l -= (size_t)(pct + 1 - r);
    r = pct + 1;
  }
  luaL_addlstring(b, r, l);
}

/* Add the replacement for the match s..e; false when it kept the match. */
static bool add_value(matcher_t *m, luaL_Buffer *b, const char *s,
                      const char *e, int tr) {
  lua_State *L = m->L;
  if (tr == LUA_TFUNCTION) {
    lua_pushvalue(L, 3);
    int n = push_captures(m, s, e);
    lua_call(L, n, 1);
  } else if (tr == LUA_TTABLE) {
    push_capture(m, 0, s, e);
    lua_gettable(L, 3);
  } else {
    add_replacement(m, b, s, e);
    return true;
  }
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    luaL_addlstring(b, s, (size_t)(e - s));
    return false;
  }
  if (!lua_isstring(L, -1))
    luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  luaL_addvalue(b);
  return true;
}

static int str_gsub(lua_State *L) {
  size_t ls, lp;
  const char *src = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  const char *lastmatch = NULL;
  int tr = lua_type(L, 3);
  lua_Integer max_n = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
  luaL_argexpected(L,
                   tr == LUA_TNUMBER || tr == LUA_TSTRING ||
                       tr == LUA_TFUNCTION || tr == LUA_TTABLE,
                   3, "string/function/table");
  bool anchor = lp > 0 && *p == '^';
  if (anchor) {
    p++;
    lp--;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  matcher_t m;
  matcher_init(&m, L, src, ls, p, lp);
  lua_Integer n = 0;
  bool changed = false;
  while (n < max_n) {
    matcher_reset(&m);
    const char *e = do_match(&m, src, p);
    if (e && e != lastmatch) {
      n++;
      changed = add_value(&m, &b, src, e, tr) || changed;
      src = lastmatch = e;
    } else if (src < m.s_end) {
      luaL_addchar(&b, *src++);
    } else {
      break;
    }
    if (anchor)
      break;
  }
  if (!changed) {
    lua_pushvalue(L, 1);
  } else {
    luaL_addlstring(&b, src, (size_t)(m.s_end - src));
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, n);
  return 2;
}

void atr__pattern_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"find", str_find},
                                 {"match", str_match},
                                 {"gmatch", str_gmatch},
                                 {"gsub", str_gsub},
                                 {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
