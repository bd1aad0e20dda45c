// The interactive-fiction reader (issue 6) will live here; for now it links to the writer.
import { $, storyIdFromPath } from "/static/common.js";

$("#write-link").href = `/write/${encodeURIComponent(storyIdFromPath())}`;
