switch("path", "$projectDir/../src")
switch("threads", "on")
switch("hints", "off")
