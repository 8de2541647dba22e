"""Reading DICOM files for curation: what a file holds (:mod:`.frame`), its header (:mod:`.header`,
:mod:`.multiframe`), its pixels (:mod:`.pixels`), and the guarded read of one file that ties them
together and says why a file was not used (:mod:`.read`), with pydicom's own log kept off the
console (:mod:`.pydicom_log`)."""
