// ext/sql_fence.h: an exception thrown by an SQL function or a virtual-table
// method the extension registers reaches the caller as an SQL error, never
// SQLite's C frames. The callbacks here throw on purpose; they exist only in
// this test (tests/sql/hostile_store_test.cc drives a real one).
#ifndef SQLITE_CORE
#define SQLITE_CORE 1  // the test binary calls libsqlite3 directly
#endif
#include "ext/sql_fence.h"

#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>

#include "tests/process_util.h"
#include "tests/test_util.h"

namespace snapshot_test {
namespace {

using snapshot::CreateFencedFunction;
using snapshot::Fenced;
using snapshot::FencedMethod;

void ThrowsBadAlloc(sqlite3_context*, int, sqlite3_value**) { throw std::bad_alloc(); }
void ThrowsLengthError(sqlite3_context*, int, sqlite3_value**) { throw std::length_error("a declared size is impossible"); }
void ThrowsAfterAResult(sqlite3_context* ctx, int, sqlite3_value**) {
  sqlite3_result_int(ctx, 1);
  throw 42;  // not a std::exception
}

struct Step {
  int rc;
  std::string error;
};
Step StepOnce(sqlite3* db, const std::string& sql) {
  Stmt s(db, sql);
  const int rc = s.Step();
  return {rc, s.Error()};
}

TEST(SqlFence, AnExceptionInAnSqlFunctionIsAnSqlError) {
  sqlite3* db = nullptr;
  ASSERT_EQ(SQLITE_OK, sqlite3_open(":memory:", &db));
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> close(db, sqlite3_close);
  ASSERT_EQ(SQLITE_OK, CreateFencedFunction(db, "bad_alloc", 0, SQLITE_UTF8, nullptr, Fenced<ThrowsBadAlloc>(), nullptr));
  ASSERT_EQ(SQLITE_OK,
            CreateFencedFunction(db, "length_error", 0, SQLITE_UTF8, nullptr, Fenced<ThrowsLengthError>(), nullptr));
  ASSERT_EQ(SQLITE_OK, CreateFencedFunction(db, "throws_int", 0, SQLITE_UTF8, nullptr, Fenced<ThrowsAfterAResult>(),
                                            nullptr));

  Step r = StepOnce(db, "SELECT bad_alloc()");
  EXPECT_EQ(SQLITE_NOMEM, r.rc);
  EXPECT_EQ("out of memory", r.error);
  r = StepOnce(db, "SELECT length_error()");
  EXPECT_EQ(SQLITE_ERROR, r.rc);
  EXPECT_EQ("a declared size is impossible", r.error);
  r = StepOnce(db, "SELECT throws_int()");
  EXPECT_EQ(SQLITE_ERROR, r.rc) << "a result set before the throw must not stand";
  EXPECT_EQ("unexpected C++ exception", r.error);
  EXPECT_EQ("1", Query(db, "SELECT 1")) << "the connection goes on";
}

// An eponymous table whose xFilter throws.
struct Table {
  sqlite3_vtab base;
};
int Connect(sqlite3* db, void*, int, const char* const*, sqlite3_vtab** out, char**) {
  const int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(v)");
  if (rc != SQLITE_OK) return rc;
  auto* t = new Table();
  *out = &t->base;
  return SQLITE_OK;
}
int Disconnect(sqlite3_vtab* vtab) {
  sqlite3_free(vtab->zErrMsg);
  delete reinterpret_cast<Table*>(vtab);
  return SQLITE_OK;
}
int BestIndex(sqlite3_vtab*, sqlite3_index_info*) { return SQLITE_OK; }
int Open(sqlite3_vtab*, sqlite3_vtab_cursor** out) {
  *out = new sqlite3_vtab_cursor();
  return SQLITE_OK;
}
int Close(sqlite3_vtab_cursor* cur) {
  delete cur;
  return SQLITE_OK;
}
int Filter(sqlite3_vtab_cursor*, int, const char*, int, sqlite3_value**) {
  throw std::runtime_error("the table cannot be read");
}
int Next(sqlite3_vtab_cursor*) { return SQLITE_OK; }
int Eof(sqlite3_vtab_cursor*) { return 1; }
int Column(sqlite3_vtab_cursor*, sqlite3_context*, int) { return SQLITE_OK; }
int Rowid(sqlite3_vtab_cursor*, sqlite3_int64* out) {
  *out = 0;
  return SQLITE_OK;
}

TEST(SqlFence, AnExceptionInAVirtualTableMethodIsAnSqlError) {
  sqlite3* db = nullptr;
  ASSERT_EQ(SQLITE_OK, sqlite3_open(":memory:", &db));
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> close(db, sqlite3_close);
  sqlite3_module m;
  std::memset(&m, 0, sizeof m);
  m.xConnect = FencedMethod<Connect>::Call;
  m.xBestIndex = FencedMethod<BestIndex>::Call;
  m.xDisconnect = FencedMethod<Disconnect>::Call;
  m.xOpen = FencedMethod<Open>::Call;
  m.xClose = FencedMethod<Close>::Call;
  m.xFilter = FencedMethod<Filter>::Call;
  m.xNext = FencedMethod<Next>::Call;
  m.xEof = FencedMethod<Eof>::Call;
  m.xColumn = FencedMethod<Column>::Call;
  m.xRowid = FencedMethod<Rowid>::Call;
  ASSERT_EQ(SQLITE_OK, sqlite3_create_module(db, "throwing", &m, nullptr));

  const Step r = StepOnce(db, "SELECT * FROM throwing");
  EXPECT_EQ(SQLITE_ERROR, r.rc);
  EXPECT_EQ("the table cannot be read", r.error);
  EXPECT_EQ("1", Query(db, "SELECT 1")) << "the connection goes on";
}

}  // namespace
}  // namespace snapshot_test
