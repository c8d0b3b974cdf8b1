// No C++ exception may unwind into SQLite. Its frames are C: an exception
// passing through them would leave its mutexes held and its state half
// changed, or end the process in std::terminate. (The VFS methods, which
// SQLite also calls, catch on their own: vfs/snapshot_vfs.cc.)
//
// So every callback the extension hands to SQLite is wrapped where it is
// registered, and only wrapped callbacks can be registered:
//
//   void MyFunc(sqlite3_context* ctx, int argc, sqlite3_value** argv);
//   CreateFencedFunction(db, "my_func", 1, SQLITE_UTF8, data, Fenced<MyFunc>(), destroy);
//
//   sqlite3_module m = {};
//   m.xFilter = FencedMethod<Filter>::Call;    // any int-returning method
//
// What the caller of the SQL sees: std::bad_alloc is SQLITE_NOMEM ("out of
// memory"); any other exception an SQL error carrying its what(). A thread
// the extension starts catches in its body the same way (see
// RunInBackground in ext/tracked_capture.cc): an exception leaving a thread
// ends the process.
#pragma once

#include <exception>
#include <new>

#include "vfs/sqlite_api.h"

namespace snapshot {

using SqlFunctionBody = void (*)(sqlite3_context*, int, sqlite3_value**);

// An SQL function's body wrapped so that nothing it throws reaches SQLite.
// Made only by Fenced<F>(), so a bare function cannot be registered.
class FencedFunction {
 public:
  SqlFunctionBody get() const { return fn_; }

 private:
  template <SqlFunctionBody F>
  friend constexpr FencedFunction Fenced();
  constexpr explicit FencedFunction(SqlFunctionBody fn) : fn_(fn) {}
  SqlFunctionBody fn_;
};

template <SqlFunctionBody F>
void CallFenced(sqlite3_context* ctx, int argc, sqlite3_value** argv) noexcept {
  try {
    F(ctx, argc, argv);
  } catch (const std::bad_alloc&) {
    sqlite3_result_error_nomem(ctx);
  } catch (const std::exception& e) {
    sqlite3_result_error(ctx, e.what(), -1);
  } catch (...) {
    sqlite3_result_error(ctx, "unexpected C++ exception", -1);
  }
}

template <SqlFunctionBody F>
constexpr FencedFunction Fenced() {
  return FencedFunction(&CallFenced<F>);
}

// sqlite3_create_function_v2 for a scalar function, fenced.
inline int CreateFencedFunction(sqlite3* db, const char* name, int n_args, int flags, void* data,
                                FencedFunction fn, void (*destroy)(void*)) {
  return sqlite3_create_function_v2(db, name, n_args, flags, data, fn.get(), nullptr, nullptr, destroy);
}

// A virtual-table method wrapped likewise: SQLITE_NOMEM for std::bad_alloc,
// SQLITE_ERROR for any other exception, with its message on the table when
// the method has the table or a cursor to put it on.
template <auto F>
struct FencedMethod;

namespace fence_internal {
inline void SetError(sqlite3_vtab* vtab, const char* what) {
  sqlite3_free(vtab->zErrMsg);
  vtab->zErrMsg = sqlite3_mprintf("%s", what);
}
inline void SetError(sqlite3_vtab_cursor* cur, const char* what) { SetError(cur->pVtab, what); }
template <typename T>
void SetError(T, const char*) {}
}  // namespace fence_internal

template <typename First, typename... Rest, int (*F)(First, Rest...)>
struct FencedMethod<F> {
  static int Call(First first, Rest... rest) noexcept {
    try {
      return F(first, rest...);
    } catch (const std::bad_alloc&) {
      return SQLITE_NOMEM;
    } catch (const std::exception& e) {
      fence_internal::SetError(first, e.what());
      return SQLITE_ERROR;
    } catch (...) {
      fence_internal::SetError(first, "unexpected C++ exception");
      return SQLITE_ERROR;
    }
  }
};

}  // namespace snapshot
