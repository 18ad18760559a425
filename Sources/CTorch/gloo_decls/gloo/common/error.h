// See the note at the top of distributed.cpp: nothing from this header is used by the shim.
#pragma once
