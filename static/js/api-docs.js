// The API docs page (templates/api/docs.html), loaded before Redoc. Redoc's side menu always
// shows a logo from Redocly's CDN; the CSP allows images from this site only, so the browser
// would refuse it with a console error. An image from another origin gets an empty image
// instead: the page loads nothing from outside.
"use strict";

(function () {
  var BLANK = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";
  var setAttribute = Element.prototype.setAttribute;

  function outside(value) {
    try {
      var url = new URL(String(value), window.location.href);
      return (url.protocol === "http:" || url.protocol === "https:") && url.origin !== window.location.origin;
    } catch (e) {
      return false;
    }
  }

  var src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    configurable: true,
    enumerable: src.enumerable,
    get: src.get,
    set: function (value) {
      src.set.call(this, outside(value) ? BLANK : value);
    },
  });

  Element.prototype.setAttribute = function (name, value) {
    if (this instanceof HTMLImageElement && String(name).toLowerCase() === "src" && outside(value)) {
      value = BLANK;
    }
    return setAttribute.call(this, name, value);
  };
})();
