#include "store/frame_cache.h"

namespace snapshot {

FrameCache* FrameCache::Shared() {
  static FrameCache* cache = new FrameCache;  // never destroyed: readers may outlive static destructors
  return cache;
}

FrameCache::Registration::~Registration() {
  std::lock_guard<std::mutex> l(cache_->mu_);
  cache_->bounds_.erase(it_);
  if (cache_->bounds_.empty()) {
    cache_->entries_.clear();
    cache_->lru_.clear();
    cache_->bytes_ = 0;
    cache_->spare_.reset();
  } else {
    cache_->EvictLocked(0);
  }
}

std::unique_ptr<FrameCache::Registration> FrameCache::Register(size_t bytes) {
  std::lock_guard<std::mutex> l(mu_);
  return std::unique_ptr<Registration>(new Registration(this, bounds_.insert(bytes)));
}

FrameCache::Frame FrameCache::Lookup(const FrameKey& key) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.pages;
}

FrameCache::Frame FrameCache::Insert(const FrameKey& key, std::shared_ptr<std::string> pages) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    if (it->second.pages->size() >= pages->size()) return it->second.pages;
    // A longer decode of a frame held in part replaces the part.
    bytes_ -= it->second.pages->capacity();
    lru_.erase(it->second.lru);
    entries_.erase(it);
  }
  Frame out = pages;
  if (bounds_.empty()) return out;  // nobody registered: nothing is kept
  EvictLocked(pages->capacity());
  lru_.push_front(key);
  bytes_ += pages->capacity();
  entries_.emplace(key, Entry{std::move(pages), lru_.begin()});
  return out;
}

// Evicts the least recently used frames until `incoming` more bytes fit
// the bound. The incoming frame is always kept, so is the last frame when
// none is incoming (a bound below one frame still caches one).
void FrameCache::EvictLocked(size_t incoming) {
  const size_t capacity = CapacityLocked();
  while (!lru_.empty() && bytes_ + incoming > capacity && !(incoming == 0 && lru_.size() == 1)) {
    auto it = entries_.find(lru_.back());
    bytes_ -= it->second.pages->capacity();
    // Only the cache holds it (every other holder got it from the cache,
    // under this lock): its memory can take the next frame.
    if (it->second.pages.use_count() == 1 &&
        (!spare_ || spare_->capacity() < it->second.pages->capacity())) {
      spare_ = std::move(it->second.pages);
    }
    entries_.erase(it);
    lru_.pop_back();
  }
}

std::shared_ptr<std::string> FrameCache::TakeBuffer(size_t bytes) {
  std::lock_guard<std::mutex> l(mu_);
  if (spare_ && spare_->capacity() >= bytes && spare_->capacity() / 2 <= bytes) return std::move(spare_);
  return std::make_shared<std::string>();
}

size_t FrameCache::bytes() const {
  std::lock_guard<std::mutex> l(mu_);
  return bytes_;
}
size_t FrameCache::frames() const {
  std::lock_guard<std::mutex> l(mu_);
  return entries_.size();
}
size_t FrameCache::capacity() const {
  std::lock_guard<std::mutex> l(mu_);
  return CapacityLocked();
}

}  // namespace snapshot
