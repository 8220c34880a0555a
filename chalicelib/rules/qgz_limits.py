"""What a `.qgz` (a zipped QGIS project) may hold: the API checks the count when the file is
uploaded, and the QGIS job checks all three before it unpacks anything. A leaf module: the job's
QGIS process imports it without the API's AWS clients."""

# More members than any QGIS writes (the project, its auxiliary storage, attachments).
MAX_MEMBERS = 1000
# What all members may unpack to together, and how much one member may grow in unpacking: zip
# bombs reach ratios in the thousands, QGIS projects a few dozen.
MAX_UNPACKED_BYTES = 512 * 1024**2
MAX_RATIO = 200
# Below this, a member's ratio does not matter (a tiny file compresses as it likes).
RATIO_FROM_BYTES = 1024**2
