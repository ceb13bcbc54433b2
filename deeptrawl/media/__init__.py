"""Media identification (by content, never by name), probing and decoding under limits."""

from deeptrawl.media.item import MediaInfo, MediaItem
from deeptrawl.media.sniff import MediaKind, MediaType, sniff
from deeptrawl.media.probe import load_item, probe

__all__ = ["MediaInfo", "MediaItem", "MediaKind", "MediaType", "load_item", "probe", "sniff"]
